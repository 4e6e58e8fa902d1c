"""Cross-checks (XCHK-*): the API's setting against what the server does from outside.

The API side comes from the settings snapshot; the external side from the SMTP and TLS families'
session fixtures (relay_observation, catchall_observation, legacy_tls_observation). A setting the
server does not honour is reported as an ineffective setting.
"""

from __future__ import annotations

import pytest

from mailaudit.evaluate import api as judge
from mailaudit.evaluate import xchk


@pytest.mark.requirement("XCHK-RELAY")
def test_relay_setting_is_effective(api_snapshot, api_policy, relay_observation, verdict):
    """API-RELAY and SMTP-OPEN-RELAY agree; a setting that says Nobody while the server relays is
    reported as an ineffective setting."""
    api = judge.evaluate_relay(api_snapshot, api_policy)
    verdict(xchk.relay_crosscheck(
        api, api_snapshot.read("smtp_allow_relay"), tuple(relay_observation.relayed_variants),
        tuple(getattr(relay_observation, "undecided_variants", ()))))


@pytest.mark.requirement("XCHK-CATCHALL")
def test_catchall_setting_is_effective(api_snapshot, api_policy, target, catchall_observation, verdict):
    """API-CATCHALL agrees with SMTP-CATCHALL."""
    api = judge.evaluate_catchall(api_snapshot, api_policy)
    domain = target.domain.lower()
    setting = api_snapshot.read("domain_catch_all", domain) if domain in api_snapshot.domains else None
    seen = f"RCPT TO:{getattr(catchall_observation, 'recipient', '?')} answered " \
           f"{getattr(catchall_observation, 'reply', '?')}"
    verdict(xchk.catchall_crosscheck(api, domain, setting, catchall_observation.accepted, seen))


@pytest.mark.requirement("XCHK-TLS")
def test_tls_protocol_setting_is_effective(api_snapshot, api_policy, legacy_tls_observation, verdict):
    """API-TLS-PROTOCOLS agrees with what TLS-NO-LEGACY-TLS observed."""
    api = judge.evaluate_tls_protocols(api_snapshot, api_policy)
    ports = getattr(legacy_tls_observation, "by_port", ())
    seen = "\n".join([*(f"port {port}: {', '.join(sorted(versions)) or 'no legacy version'}"
                         for port, versions in ports),
                       *(f"not observed: {why}" for why in getattr(legacy_tls_observation, "unobserved", ()))])
    verdict(xchk.tls_crosscheck(
        api, judge.tls_readings(api_snapshot), frozenset(legacy_tls_observation.accepted_versions), seen))
