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
    ("API-PASSWORD-POLICY", "/api/v1/settings/*password-*", "Password Requirements"),
    ("API-DOMAIN-SMTP-AUTH", "/api/v1/settings/sysadmin/domain-defaults", "Settings > Domain Defaults"),
    ("API-BOUNCES-SPF", "/api/v1/settings/sysadmin/antispam-settings", "Settings > Antispam > Options"),
    ("API-SPAM-WHITELIST-BYPASS", "/api/v1/settings/sysadmin/antispam-settings", "Skip spam checks"),
    ("API-OUTBOUND-SPAM", "/api/v1/settings/sysadmin/antispam-settings", "SMTP Blocking"),
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
        d["sysadmin"]["antispam-settings"]["antiSpamSettings"]["contentFilterBounceRestrictionLevel"] = \
            "Require message passed SPF if SPF exists"
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


# --- no pass from a guessed meaning (issue 12) --------------------------------------------------

SMTP_IN = ("sysadmin", "protocol-settings", "protocolSettings", "smtpIn")


def _set(d: dict[str, Any], path: tuple[str, ...], key: str, value: Any) -> None:
    for part in path:
        d = d[part]
    d[key] = value


ANTISPAM = ("sysadmin", "antispam-settings", "antiSpamSettings")


@pytest.mark.parametrize("requirement, path, key, raw, guess", [
    ("API-RELAY", SMTP_IN, "allowRelay", 0, "nobody"),
    ("API-RELAY", SMTP_IN, "allowRelay", "3", "anyone"),
    ("API-BOUNCES-SPF", ANTISPAM, "autoResponseRestrictionLevel", 3, "spf_restricted"),
    ("API-BOUNCES-SPF", ANTISPAM, "contentFilterBounceRestrictionLevel", 0, "unrestricted"),
])
def test_an_assumed_numeric_enum_is_inconclusive_never_passed(requirement, path, key, raw, guess):
    """A number from an assumed value set gives inconclusive with the raw value, the map's guess and
    the web-interface place, whether the guess would pass or fail."""
    data = edited("hardened", lambda d: _set(d, path, key, raw))
    evaluation = judge.EVALUATORS[requirement](snap_of(data), BASELINE)
    assert evaluation.outcome is Outcome.INCONCLUSIVE, evaluation.message
    assert f"= {raw!r} -> {guess}" in evaluation.message
    assert "Settings >" in evaluation.message and "values_status: confirmed" in evaluation.message


def test_numeric_throttle_actions_and_ids_types_are_inconclusive():
    """Throttle actions and IDS rule types sent as numbers cannot pass the hardened server."""
    def edit(d):
        for name in d["domains"]:
            d["domains"][name]["domainSettings"]["throttleSettings"].update(messagesAction=2, bandwidthAction=1)
        for rule, number in zip(d["sysadmin"]["ids-rules"]["rules"], (5, 1, 2, 2, 3), strict=True):
            rule["type"] = number
    snap = snap_of(edited("hardened", edit))
    for requirement in ("API-THROTTLING", "API-IDS-RULES"):
        assert judge.EVALUATORS[requirement](snap, BASELINE).outcome is Outcome.INCONCLUSIVE, requirement


def test_a_confirmed_value_set_lets_numbers_decide(tmp_path):
    """A site that confirmed the relay numbers on its build gets a real verdict from them."""
    import yaml

    from mailaudit.fieldmap import FIELDMAP_FILE
    raw = yaml.safe_load(FIELDMAP_FILE.read_text(encoding="utf-8"))
    raw["fields"]["smtp_allow_relay"]["values_status"] = "confirmed"
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    site = load_fieldmap(path)
    session, _, _ = offline_session("custom", edited("hardened", lambda d: _set(d, SMTP_IN, "allowRelay", 0)))
    snap = take_snapshot(ApiSettings(OFFLINE_URL, LAB_USER, LAB_PASSWORD, backoff_s=0), site, "s",
                         session=session, sleep=lambda s: None)
    evaluation = judge.evaluate_relay(snap, BASELINE)
    assert evaluation.passed and "values of smtp_allow_relay" not in evaluation.basis


def test_a_definite_failure_beats_a_guessed_value():
    """A guessed value elsewhere does not hide a real violation (a 0 messages/hour limit)."""
    snap = snap_of(profile("weak"))
    assert judge.evaluate_throttling(snap, BASELINE).outcome is Outcome.FAILED


# --- basis, policy keys, redaction ----------------------------------------------------------------

def test_every_verdict_states_its_basis_and_known_policy_keys(hardened, weak):
    """Each API verdict says whether it rests on seen, confirmed or assumed entries (field and
    evidence), and cites only policy leaves the policy has."""
    sources = load_policy(ROOT / "policies" / "baseline.yaml").sources
    for snap in (hardened, weak):
        for requirement, evaluate in judge.EVALUATORS.items():
            evaluation = evaluate(snap, BASELINE)
            assert evaluation.basis == "seen" or evaluation.basis.startswith("assumed: "), requirement
            assert f"basis: {evaluation.basis}" in evaluation.evidence, requirement
            assert set(evaluation.policy_keys) <= set(sources), (requirement, evaluation.policy_keys)
    assert judge.evaluate_relay(hardened, BASELINE).basis.startswith("assumed: endpoint smtp_in_settings")
    assert judge.evaluate_version(hardened, BASELINE).basis == "seen"


def test_a_secret_in_a_setting_is_redacted_from_message_and_evidence():
    """A registered secret (here: a token-like value) returned as a setting value is removed."""
    from mailaudit.redact import register_secret
    secret = "Sett1ng-Secret-'q\"-9fK"
    register_secret(secret)
    data = edited("weak", lambda d: d["domains"]["legacy.weak.test"]["domainSettings"].__setitem__("catchAll", secret))
    evaluation = judge.evaluate_catchall(snap_of(data), BASELINE)
    assert evaluation.outcome is Outcome.FAILED
    for text in (evaluation.message, evaluation.evidence):
        assert secret not in text and repr(secret)[1:-1] not in text and "Sett1ng-Secret" not in text


# --- the new requirements in detail ---------------------------------------------------------------

def test_domain_2fa_not_required_by_policy_is_skipped(weak):
    """Where the site's policy does not require 2FA, API-DOMAIN-2FA is skipped, citing the leaf."""
    policy = BASELINE.__class__(**{**BASELINE.__dict__, "domain_2fa_required": False})
    evaluation = judge.evaluate_domain_2fa(weak, policy)
    assert evaluation.outcome is Outcome.SKIPPED and evaluation.policy_keys == ("api.domain_2fa_required",)


def test_domain_2fa_unknown_value_is_inconclusive():
    """A two-factor setting other than the "0"/"1" a source shows is not guessed."""
    data = edited("hardened", lambda d: d["domains"]["hardened.test"]["domainSettings"].__setitem__(
        "twoFactorSettings", {"setting": "2"}))
    assert judge.evaluate_domain_2fa(snap_of(data), BASELINE).outcome is Outcome.INCONCLUSIVE


def test_reversible_passwords_absent_flag_is_skipped_with_manual_check():
    """A build whose sign-in answer lacks canViewPasswords: skipped, naming where to look."""
    from selftests.unit.api_simulator import smsim
    module = smsim()
    original = module.authenticate

    def without_flag(state, body):
        reply = original(state, body)
        if isinstance(reply.body, dict):
            reply.body.pop("canViewPasswords", None)
        return reply
    module.PUBLIC_ROUTES[("POST", "/api/v1/auth/authenticate-user")] = without_flag
    try:
        evaluation = judge.evaluate_reversible_passwords(snap_of(profile("hardened")), BASELINE)
    finally:
        module.PUBLIC_ROUTES[("POST", "/api/v1/auth/authenticate-user")] = original
    assert evaluation.outcome is Outcome.SKIPPED and "Settings > Security" in evaluation.message


def test_spam_whitelist_and_forward_blacklist_both_ways(hardened, weak):
    """Skipping spam checks for whitelisted IPs, and bypassing the forwarding blacklist, fail."""
    assert judge.evaluate_spam_whitelist_bypass(hardened, BASELINE).passed
    assert "whitelisted IPs skip" in judge.evaluate_spam_whitelist_bypass(weak, BASELINE).message
    evaluation = judge.evaluate_forward_blacklist_bypass(weak, BASELINE)
    assert evaluation.outcome is Outcome.FAILED and "legacy.weak.test" in evaluation.message
    assert "weak.test:" not in evaluation.message.replace("legacy.weak.test", "")


def test_bounce_levels_2_and_3_count_as_spf_restricted_once_confirmed(tmp_path):
    """With the value set confirmed, level 3 passes the baseline (both SPF levels allowed) and is
    inconclusive under the strict policy (which of the two it is stays unknown)."""
    import yaml

    from mailaudit.fieldmap import FIELDMAP_FILE
    raw = yaml.safe_load(FIELDMAP_FILE.read_text(encoding="utf-8"))
    for key in ("autoresponder_restriction", "bounce_restriction"):
        raw["fields"][key]["values_status"] = "confirmed"
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    data = edited("hardened", lambda d: (_set(d, ANTISPAM, "autoResponseRestrictionLevel", 3),
                                         _set(d, ANTISPAM, "contentFilterBounceRestrictionLevel", 2)))
    session, _, _ = offline_session("custom", data)
    snap = take_snapshot(ApiSettings(OFFLINE_URL, LAB_USER, LAB_PASSWORD, backoff_s=0), load_fieldmap(path), "s",
                         session=session, sleep=lambda s: None)
    assert judge.evaluate_bounces_spf(snap, BASELINE).passed
    assert judge.evaluate_bounces_spf(snap, STRICT).outcome is Outcome.INCONCLUSIVE


def test_password_rules_fall_back_to_password_settings():
    """Without password-requirements [E3] (404), the password settings [C1] decide."""
    data = edited("weak", lambda d: d.__setitem__("missing_endpoints", ["/api/v1/settings/password-requirements"]))
    evaluation = judge.evaluate_password_policy(snap_of(data), BASELINE)
    assert evaluation.outcome is Outcome.FAILED and "weak.test: minimum length 4" in evaluation.message
    assert "overrides.minLength" in evaluation.evidence


def test_password_requirements_are_read_first(hardened):
    """The effective requirements [E3] are the primary source."""
    evidence = judge.evaluate_password_policy(hardened, BASELINE).evidence
    assert "GET /api/v1/settings/password-requirements -> reqLength = 14" in evidence


@pytest.mark.parametrize("edit, outcome", [
    (lambda av, sp: None, Outcome.PASSED),                                       # ClamAV (antivirus)
    (lambda av, sp: (av.pop("clamAvEnabled"), av.pop("windowsDefenderEnabled")), Outcome.PASSED),  # antispam
    (lambda av, sp: (av.update(clamAvEnabled=False), sp.update(clamdEnabled=False),
                     av.update(windowsDefenderScanFiles=True)), Outcome.PASSED),  # any Defender switch on
    (lambda av, sp: (av.update(clamAvEnabled=False), sp.update(clamdEnabled=False)), Outcome.FAILED),
    (lambda av, sp: (av.pop("clamAvEnabled"), sp.pop("clamdEnabled")), Outcome.SKIPPED),  # ClamAV unknown
])
def test_antivirus_engines_are_looked_up_everywhere(edit, outcome):
    """ClamAV in the antivirus or the antispam settings [E1]; Defender on when any scope switch is."""
    def apply(d):
        edit(d["sysadmin"]["antivirus/settings"]["settings"], d["sysadmin"]["antispam-settings"]["antiSpamSettings"]
             ["spamSettings"])
    assert judge.evaluate_antivirus(snap_of(edited("hardened", apply)), BASELINE).outcome is outcome


@pytest.mark.parametrize("items, allowed, outcome", [
    ([], (), Outcome.PASSED),
    ([{"ipAddress": "192.0.2.7", "description": "x"}], (), Outcome.FAILED),
    ([{"address": "192.0.2.7"}], ("192.0.2.0/24",), Outcome.PASSED),
    ([{"ipRange": "192.0.2.1-192.0.2.9"}], ("192.0.2.0/24",), Outcome.PASSED),
    ([{"ipRange": "192.0.2.1-192.0.3.9"}], ("192.0.2.0/24",), Outcome.FAILED),
    ([{"comment": "unknown shape"}], (), Outcome.FAILED),                  # counted whatever its keys
    ([{"comment": "unknown shape"}], ("192.0.2.0/24",), Outcome.INCONCLUSIVE),
])
def test_smtp_auth_bypass_entries_whatever_their_keys(items, allowed, outcome):
    """Entries are counted whatever their keys; addresses come from ip/ipAddress/address/ipRange [E8]."""
    policy = BASELINE.__class__(**{**BASELINE.__dict__, "smtp_auth_bypass_allowed": allowed})
    data = edited("hardened", lambda d: d["sysadmin"]["smtp-auth-bypass"].__setitem__("items", items))
    assert judge.evaluate_smtp_auth_bypass(snap_of(data), policy).outcome is outcome


def test_outbound_blocking_follows_the_site_policy(weak):
    """Outgoing SMTP blocking off fails when the policy requires it, is skipped when it does not."""
    assert judge.evaluate_outbound_spam(weak, BASELINE).outcome is Outcome.FAILED
    policy = BASELINE.__class__(**{**BASELINE.__dict__, "outbound_block_required": False})
    evaluation = judge.evaluate_outbound_spam(weak, policy)
    assert evaluation.outcome is Outcome.SKIPPED and "api.outbound_block_required" in evaluation.policy_keys


def test_auth_match_plain_switch_and_other_values():
    """A build with a plain switch (true) passes; an unknown drop-down value is inconclusive."""
    on = edited("hardened", lambda d: _set(d, SMTP_IN, "requireAuthMatch", True))
    assert "plain switch" in judge.evaluate_auth_match(snap_of(on), BASELINE).message
    other = edited("hardened", lambda d: _set(d, SMTP_IN, "requireAuthMatch", "Domain"))
    assert judge.evaluate_auth_match(snap_of(other), BASELINE).outcome is Outcome.INCONCLUSIVE
