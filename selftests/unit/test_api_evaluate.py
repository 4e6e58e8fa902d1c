"""Judging API settings offline: every API-* requirement both ways, skips, inconclusives, edges."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mailaudit.errors import ApiError
from mailaudit.evaluate import api as judge
from mailaudit.fieldmap import load_fieldmap
from mailaudit.policy import load_policy
from mailaudit.probes.smartermail import ApiSettings, take_snapshot
from mailaudit.verdict import Outcome
from mailaudit.vulns import Vulnerability, load_vulnerabilities
from selftests.unit.api_simulator import LAB_PASSWORD, LAB_USER, OFFLINE_URL, ROOT, offline_session, profile

FIELDMAP = load_fieldmap()
BASELINE = load_policy(ROOT / "policies" / "baseline.yaml").api
STRICT = load_policy(ROOT / "policies" / "strict.yaml").api


def snap_of(data: dict[str, Any]):
    """A snapshot of profile data, through the real client and the offline simulator."""
    session, _, _ = offline_session("custom", data)
    return take_snapshot(ApiSettings(OFFLINE_URL, LAB_USER, LAB_PASSWORD, backoff_s=0), FIELDMAP,
                         "mail.sim.test", session=session, sleep=lambda s: None)


@pytest.fixture(scope="module")
def hardened():
    """The hardened lab profile's snapshot."""
    return snap_of(profile("hardened"))


@pytest.fixture(scope="module")
def weak():
    """The weak lab profile's snapshot."""
    return snap_of(profile("weak"))


def edited(name: str, edit) -> dict[str, Any]:
    """A deep copy of a lab profile with one edit applied."""
    data = copy.deepcopy(profile(name))
    edit(data)
    return data


@pytest.mark.parametrize("requirement", sorted(judge.EVALUATORS))
def test_hardened_passes_every_api_requirement(hardened, requirement):
    """The hardened profile meets every API-* requirement under the baseline policy."""
    evaluation = judge.EVALUATORS[requirement](hardened, BASELINE)
    assert evaluation.passed, evaluation.message


@pytest.mark.parametrize("requirement", sorted(judge.EVALUATORS))
def test_weak_fails_every_api_requirement(weak, requirement):
    """The weak profile fails every API-* requirement, with evidence naming the API request."""
    evaluation = judge.EVALUATORS[requirement](weak, BASELINE)
    assert evaluation.outcome is Outcome.FAILED, evaluation.message
    assert "/api/v1/" in evaluation.evidence


def test_hardened_meets_the_strict_policy_too(hardened):
    """The hardened lab also meets the strict profile (its thresholds are the lab's)."""
    for requirement, evaluate in judge.EVALUATORS.items():
        assert evaluate(hardened, STRICT).passed, requirement


# --- unreadable: skipped with the manual-check place, never passed ----------------------------

@pytest.mark.parametrize("requirement, missing, place", [
    ("API-RELAY", "/api/v1/settings/sysadmin/protocol-settings", "Settings > Protocols > SMTP In > Allow Relay"),
    ("API-TLS-PROTOCOLS", "/api/v1/settings/sysadmin/protocol-settings", "Security Protocols"),
    ("API-IDS-RULES", "/api/v1/settings/sysadmin/ids-rules", "Settings > Security > IDS Rules"),
    ("API-SYSTEM-EVENTS", "/api/v1/settings/sysadmin/event-hooks-by-owner", "Settings > Events"),
    ("API-DMARC-CHECK", "/api/v1/settings/sysadmin/antispam-settings", "Settings > Antispam > Options > DMARC"),
    ("API-PASSWORD-POLICY", "/api/v1/settings/domain/password-settings", "Password Requirements"),
    ("API-DOMAIN-SMTP-AUTH", "/api/v1/settings/sysadmin/domain-defaults", "Settings > Domain Defaults"),
    ("API-BOUNCES-SPF", "/api/v1/settings/sysadmin/general-settings", "Settings > General"),
])
def test_a_404_endpoint_skips_with_manual_instruction(requirement, missing, place):
    """A build without the endpoint (404) makes the requirement skipped, naming the UI place."""
    data = edited("hardened", lambda d: d.__setitem__("missing_endpoints", [missing]))
    evaluation = judge.EVALUATORS[requirement](snap_of(data), BASELINE)
    assert evaluation.outcome is Outcome.SKIPPED, evaluation.message
    assert place in evaluation.message and "check manually" in evaluation.message


def test_a_missing_field_skips():
    """A response without the field (another build's shape) is skipped, not passed."""
    data = edited("hardened", lambda d: d["sysadmin"]["protocol-settings"]["protocolSettings"]["smtpIn"]
                  .pop("requireAuthMatch"))
    evaluation = judge.evaluate_auth_match(snap_of(data), BASELINE)
    assert evaluation.outcome is Outcome.SKIPPED
    assert "requireAuthMatch" in evaluation.message


def test_a_definite_failure_beats_an_unreadable_field():
    """If one domain fails and another is unreadable, the requirement fails (a real observation)."""
    def edit(d):
        d["domains"]["hardened.test"]["domainSettings"]["requireSmtpAuthentication"] = False
        d["sysadmin"]["domain-defaults"]["domainSettings"].pop("requireSmtpAuthentication")
    evaluation = judge.evaluate_domain_smtp_auth(snap_of(edited("hardened", edit)), BASELINE)
    assert evaluation.outcome is Outcome.FAILED and "hardened.test" in evaluation.message


def test_an_unknown_enum_value_is_inconclusive():
    """A value the field map does not know (a new build's enum) is inconclusive, not guessed."""
    data = edited("hardened", lambda d: d["sysadmin"]["protocol-settings"]["protocolSettings"]["smtpIn"]
                  .__setitem__("allowRelay", 9))
    evaluation = judge.evaluate_relay(snap_of(data), BASELINE)
    assert evaluation.outcome is Outcome.INCONCLUSIVE


def test_an_endpoint_error_raises_instead_of_judging():
    """success:false with HTTP 200 on a read is an error (ApiError), never a pass."""
    from selftests.unit.api_simulator import smsim
    session, state, _ = offline_session("hardened")
    state.fault = smsim().Fault("malformed", match="/api/v1/settings/sysadmin/ids-rules")
    snap = take_snapshot(ApiSettings(OFFLINE_URL, LAB_USER, LAB_PASSWORD, backoff_s=0), FIELDMAP, "s",
                         session=session, sleep=lambda s: None)
    with pytest.raises(ApiError, match="ids-rules"):
        judge.evaluate_ids_rules(snap, BASELINE)


# --- API-VERSION ------------------------------------------------------------------------------

def _version(version: str, table=None):
    data = edited("hardened", lambda d: d["about"].__setitem__("version", version))
    return judge.evaluate_version(snap_of(data), BASELINE, table)


def test_vulnerability_table_cites_sources():
    """The table holds CVE-2026-23760 and CVE-2026-24423, fixed in 9511, each with sources."""
    table = {v.id: v for v in load_vulnerabilities()}
    for cve in ("CVE-2026-23760", "CVE-2026-24423"):
        assert table[cve].fixed_in_build == 9511 and table[cve].exploited and table[cve].sources


def test_exploited_build_is_a_critical_failure():
    """Below 9511: a critical failure naming both CVEs."""
    evaluation = _version("100.0.9510")
    assert evaluation.outcome is Outcome.FAILED and evaluation.severity == "critical"
    assert "CVE-2026-23760" in evaluation.message and "CVE-2026-24423" in evaluation.message


def test_build_below_policy_minimum_without_known_cve_fails_high():
    """A build under the policy minimum but past every known CVE fails with high severity."""
    table = (Vulnerability("CVE-X", "x", 100, True, ("s",)),)
    evaluation = judge.evaluate_version(
        snap_of(edited("hardened", lambda d: d["about"].__setitem__("version", "100.0.9000"))), BASELINE, table)
    assert evaluation.outcome is Outcome.FAILED and evaluation.severity == "high"


@pytest.mark.parametrize("version, outcome", [("100.0.9511", Outcome.PASSED), ("100.0.9511.1", Outcome.PASSED),
                                              ("Build 9600", Outcome.PASSED), ("unknown", Outcome.INCONCLUSIVE)])
def test_version_parsing(version, outcome):
    """The build is the last number of the version string; none at all is inconclusive."""
    assert judge.build_number("100.0.9511") == 9511
    assert _version(version).outcome is outcome


# --- details of single requirements -----------------------------------------------------------

def test_smtp_auth_bypass_allows_policy_networks():
    """Entries inside the policy's allowed networks pass; others fail by IP."""
    policy = BASELINE.__class__(**{**BASELINE.__dict__, "smtp_auth_bypass_allowed": ("203.0.113.0/24",)})
    data = edited("weak", lambda d: d["sysadmin"]["smtp-auth-bypass"].__setitem__(
        "items", [{"ip": "203.0.113.9"}, {"ip": "203.0.113.0/25"}]))
    assert judge.evaluate_smtp_auth_bypass(snap_of(data), policy).passed
    evaluation = judge.evaluate_smtp_auth_bypass(snap_of(profile("weak")), policy)
    assert evaluation.outcome is Outcome.FAILED and "198.51.100.7" in evaluation.message
    assert "203.0.113.0/24" not in evaluation.message


def test_allow_listed_command_line_scanner_passes():
    """A command-line scanner on the allow-list passes when an engine also scans."""
    def edit(d):
        av = d["sysadmin"]["antivirus/settings"]["settings"]
        av.update(commandLine="C:\\ClamAV\\clamdscan.exe", commandLineScanMessages=True)
    policy = BASELINE.__class__(**{**BASELINE.__dict__, "av_command_lines_allowed": ("c:\\clamav\\clamdscan.exe",)})
    assert judge.evaluate_antivirus(snap_of(edited("hardened", edit)), policy).passed
    assert not judge.evaluate_antivirus(snap_of(edited("hardened", edit)), BASELINE).passed


def test_ids_rule_thresholds_are_checked_per_type():
    """A rule past its threshold or with a short block time does not count."""
    def edit(d):
        for rule in d["sysadmin"]["ids-rules"]["rules"]:
            if rule["type"] == "BruteForce":
                rule["blockTimeMinutes"] = 5
    evaluation = judge.evaluate_ids_rules(snap_of(edited("hardened", edit)), BASELINE)
    assert evaluation.outcome is Outcome.FAILED and "block time 5 min < 30" in evaluation.message


def test_strict_policy_tightens_bounce_restriction():
    """'Require SPF pass if SPF exists' passes the baseline and fails the strict profile."""
    def edit(d):
        d["sysadmin"]["general-settings"]["generalSettings"]["bounceRestriction"] = "RequirePassedSpfIfExists"
    snap = snap_of(edited("hardened", edit))
    assert judge.evaluate_bounces_spf(snap, BASELINE).passed
    assert judge.evaluate_bounces_spf(snap, STRICT).outcome is Outcome.FAILED


def test_no_domains_skips_per_domain_checks():
    """A server with no domains has nothing to check per domain: skipped with the reason."""
    data = edited("hardened", lambda d: d.__setitem__("domains", {}))
    evaluation = judge.evaluate_catchall(snap_of(data), BASELINE)
    assert evaluation.outcome is Outcome.SKIPPED and "no domain" in evaluation.message


def test_evidence_names_request_field_value_and_provenance(hardened):
    """Evidence says which request, which JSON field, what value, seen/assumed and the source tag."""
    evidence = judge.evaluate_relay(hardened, BASELINE).evidence
    assert "GET /api/v1/settings/sysadmin/protocol-settings" in evidence
    assert "protocolSettings.smtpIn.allowRelay = 'Nobody' (nobody)" in evidence
    assert "assumed" in evidence and "TLS certificate verified" in evidence
