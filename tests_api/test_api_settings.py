"""SmarterMail admin API requirements (API-*): one test per requirement, per server.

Each test reads the session's settings snapshot (fixtures/api.py) and judges it with
mailaudit.evaluate.api against the policy's api section.
"""

from __future__ import annotations

import pytest

from mailaudit.evaluate import api as judge


@pytest.mark.requirement("API-VERSION")
def test_build_is_current_and_not_known_exploited(api_snapshot, api_policy, verdict):
    """The build is at or above the policy minimum; builds with known exploited vulnerabilities
    (below 9511: CVE-2026-23760, CVE-2026-24423) are critical failures."""
    verdict(judge.evaluate_version(api_snapshot, api_policy))


@pytest.mark.requirement("API-RELAY")
def test_allow_relay_is_nobody(api_snapshot, api_policy, verdict):
    """SMTP In "Allow Relay" is Nobody."""
    verdict(judge.evaluate_relay(api_snapshot, api_policy))


@pytest.mark.requirement("API-AUTH-MATCH")
def test_require_auth_match_is_on(api_snapshot, api_policy, verdict):
    """"Require Auth Match" is on, at its strictest value ("Email Address" where the build offers
    a choice)."""
    verdict(judge.evaluate_auth_match(api_snapshot, api_policy))


@pytest.mark.requirement("API-LOCAL-DELIVERY-AUTH")
def test_domain_smtp_auth_applies_to_local_deliveries(api_snapshot, api_policy, verdict):
    """"Enable domain's SMTP auth setting for local deliveries" is on."""
    verdict(judge.evaluate_local_delivery_auth(api_snapshot, api_policy))


@pytest.mark.requirement("API-DOMAIN-SMTP-AUTH")
def test_every_domain_requires_smtp_auth(api_snapshot, api_policy, verdict):
    """Every domain, and the domain defaults, require SMTP authentication."""
    verdict(judge.evaluate_domain_smtp_auth(api_snapshot, api_policy))


@pytest.mark.requirement("API-CATCHALL")
def test_no_domain_has_a_catchall(api_snapshot, api_policy, verdict):
    """No domain has a catch-all."""
    verdict(judge.evaluate_catchall(api_snapshot, api_policy))


@pytest.mark.requirement("API-BOUNCES-SPF")
def test_bounces_and_autoresponders_only_for_spf_pass(api_snapshot, api_policy, verdict):
    """Bounces and auto-responders are limited to SPF-passing senders (or off)."""
    verdict(judge.evaluate_bounces_spf(api_snapshot, api_policy))


@pytest.mark.requirement("API-PASSWORD-POLICY")
def test_password_policy_meets_minimum_on_every_domain(api_snapshot, api_policy, verdict):
    """Minimum length and complexity rules meet the policy for every domain."""
    verdict(judge.evaluate_password_policy(api_snapshot, api_policy))


@pytest.mark.requirement("API-THROTTLING")
def test_outgoing_mail_is_throttled(api_snapshot, api_policy, verdict):
    """Outgoing messages per hour (and bandwidth) are throttled with a reject or delay action."""
    verdict(judge.evaluate_throttling(api_snapshot, api_policy))


@pytest.mark.requirement("API-OUTBOUND-SPAM")
def test_outgoing_messages_are_spam_checked(api_snapshot, api_policy, verdict):
    """Outgoing messages are spam-checked."""
    verdict(judge.evaluate_outbound_spam(api_snapshot, api_policy))


@pytest.mark.requirement("API-IDS-RULES")
def test_ids_rules_enabled_within_thresholds(api_snapshot, api_policy, verdict):
    """IDS rules Internal Spammer, Bad SMTP Sessions (harvesting), password brute force and DoS
    are enabled within the policy's thresholds."""
    verdict(judge.evaluate_ids_rules(api_snapshot, api_policy))


@pytest.mark.requirement("API-SYSTEM-EVENTS")
def test_memory_and_spool_events_notify_someone(api_snapshot, api_policy, verdict):
    """System events for memory use and spool count are enabled and notify someone."""
    verdict(judge.evaluate_system_events(api_snapshot, api_policy))


@pytest.mark.requirement("API-MAILING-LISTS")
def test_mailing_lists_limited_and_not_open(api_snapshot, api_policy, verdict):
    """Lists per domain are limited; no list lets anyone post."""
    verdict(judge.evaluate_mailing_lists(api_snapshot, api_policy))


@pytest.mark.requirement("API-SPF-SPOOL-FILTER")
def test_spf_check_filters_at_spool(api_snapshot, api_policy, verdict):
    """The SPF check has spool filtering enabled."""
    verdict(judge.evaluate_spf_spool_filter(api_snapshot, api_policy))


@pytest.mark.requirement("API-DMARC-CHECK")
def test_dmarc_compliance_check_is_on(api_snapshot, api_policy, verdict):
    """The DMARC policy compliance check is enabled."""
    verdict(judge.evaluate_dmarc_check(api_snapshot, api_policy))


@pytest.mark.requirement("API-TLS-PROTOCOLS")
def test_legacy_tls_versions_not_allowed(api_snapshot, api_policy, verdict):
    """The server's allowed TLS/SSL versions exclude SSL 3, TLS 1.0, TLS 1.1."""
    verdict(judge.evaluate_tls_protocols(api_snapshot, api_policy))


@pytest.mark.requirement("API-ANTIVIRUS")
def test_antivirus_engine_scans_messages(api_snapshot, api_policy, verdict):
    """An antivirus engine (ClamAV or Windows Defender) scans messages; any command-line scanner
    is on the policy's allow-list."""
    verdict(judge.evaluate_antivirus(api_snapshot, api_policy))


@pytest.mark.requirement("API-SMTP-AUTH-BYPASS")
def test_smtp_auth_bypass_list_empty_or_allowed(api_snapshot, api_policy, verdict):
    """The SMTP auth bypass list is empty or only holds the policy's allowed IPs."""
    verdict(judge.evaluate_smtp_auth_bypass(api_snapshot, api_policy))


@pytest.mark.requirement("API-SPOOL-BACKLOG")
def test_spool_has_no_backlog(api_snapshot, api_policy, verdict):
    """The spool holds fewer messages than the policy's threshold (a backlog can mean someone is
    spamming)."""
    verdict(judge.evaluate_spool_backlog(api_snapshot, api_policy))


@pytest.mark.requirement("API-DOMAIN-2FA")
def test_every_domain_enforces_two_factor_auth(api_snapshot, api_policy, verdict):
    """Every domain enforces two-factor authentication for its users and admins, where the policy
    requires it."""
    verdict(judge.evaluate_domain_2fa(api_snapshot, api_policy))


@pytest.mark.requirement("API-REVERSIBLE-PASSWORDS")
def test_admins_cannot_view_user_passwords(api_snapshot, api_policy, verdict):
    """Administrators cannot view users' passwords (the login response's canViewPasswords is
    false); passwords are not stored reversibly."""
    verdict(judge.evaluate_reversible_passwords(api_snapshot, api_policy))


@pytest.mark.requirement("API-SPAM-WHITELIST-BYPASS")
def test_whitelisted_ips_do_not_skip_spam_checks(api_snapshot, api_policy, verdict):
    """Whitelisted (trusted) IPs do not skip the spam checks."""
    verdict(judge.evaluate_spam_whitelist_bypass(api_snapshot, api_policy))


@pytest.mark.requirement("API-FORWARD-BLACKLIST-BYPASS")
def test_no_domain_bypasses_forward_blacklist(api_snapshot, api_policy, verdict):
    """No domain bypasses the forwarding blacklist."""
    verdict(judge.evaluate_forward_blacklist_bypass(api_snapshot, api_policy))
