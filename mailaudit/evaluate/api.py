"""Judging the SmarterMail settings snapshot against the policy (API-* requirements). Pure.

Every function takes the :class:`~mailaudit.fieldmap.ApiSnapshot` and the policy's ``api``
section and returns an Evaluation:

- a field the API did not give (404 endpoint, missing field) makes the requirement *skipped* with
  the manual-check place;
- a value the field map does not know, or a number whose meaning the map only assumes (a GUESSED
  reading), makes it *inconclusive*, naming the raw value, the guessed meaning and where to
  confirm it: a guessed meaning never passes (and never fails) a requirement;
- a definite non-compliant value found elsewhere still fails;
- a field whose endpoint errored raises ApiError / BudgetExceeded (the test is an error).

Each verdict says what it rests on (``Evaluation.basis`` and an evidence line): ``seen``,
``confirmed`` (a site checked its build) or ``assumed: <entries>``. Per-domain verdicts over a
sample of the domains (the policy's cap) say so; a sample without a violation is no pass but a
BudgetExceeded error. Messages and evidence pass through :func:`mailaudit.redact.redact`.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from mailaudit.errors import BudgetExceeded
from mailaudit.fieldmap import ApiSnapshot, Reading, ReadState, basis_of
from mailaudit.policy import ApiPolicy, IdsRuleLimit
from mailaudit.redact import redact
from mailaudit.verdict import Evaluation, Outcome
from mailaudit.vulns import Vulnerability, load_vulnerabilities

RELAY_LABELS = {"nobody": "Nobody", "local_users": "Only Local Users",
                "local_domains": "Only Local Domains", "anyone": "Anyone"}
TLS_FIELDS = {"SSLv3": "tls_ssl3_enabled", "TLSv1.0": "tls_tls10_enabled", "TLSv1.1": "tls_tls11_enabled",
              "TLSv1.2": "tls_tls12_enabled", "TLSv1.3": "tls_tls13_enabled"}
# rule -> (effective requirement [E3], password-settings fallback [C1])
PASSWORD_RULES = {"capital": ("pwreq_require_capital", "pw_require_capital"),
                  "lower": ("pwreq_require_lower", "pw_require_lower"),
                  "number": ("pwreq_require_number", "pw_require_number"),
                  "symbol": ("pwreq_require_symbol", "pw_require_symbol"),
                  "not_username": ("pwreq_not_username", "pw_not_username"),
                  "prevent_common": ("pw_prevent_common",)}
MIN_LENGTH_KEYS = ("pwreq_min_length", "pw_min_length")
IDS_LABELS = {"internal_spammer": "Internal Spammer", "harvesting": "Bad SMTP Sessions (harvesting)",
              "brute_force": "Password Brute Force", "dos": "Denial of Service"}
EVENT_LABELS = {"memory": "Memory", "spool_count": "Spool Count"}
SPF_LEVELS = ("spf_pass", "spf_pass_if_exists")
CLAMAV_KEYS = ("av_clamav_enabled", "av_clamav_enabled_antispam")
DEFENDER_KEYS = ("av_defender_enabled", "av_defender_scan_messages",
                 "av_defender_scan_messages_without_attachments", "av_defender_scan_files")
BYPASS_ADDRESS_KEYS = ("ip", "ipAddress", "address", "ipRange", "range", "value")


@dataclass(frozen=True)
class Undecided:
    """A check's answer when the value was read but the policy cannot be applied to it."""

    text: str


Check = Callable[[Reading], "str | Undecided | None"]     # None = compliant, str = the failure


# --- shared helpers ---------------------------------------------------------------------------

def header(snapshot: ApiSnapshot) -> str:
    """The first evidence line: which API, which account, whether TLS was verified."""
    tls = "verified" if snapshot.tls_verified else "NOT verified (--api-insecure)"
    return f"API {snapshot.base_url} as {snapshot.user!r}; TLS certificate {tls}"


def evidence(snapshot: ApiSnapshot, readings: Iterable[Reading], *extra: str) -> str:
    """The evidence block: header, basis, the domain sample, one line per reading, extra lines."""
    readings = list(readings)
    lines = [header(snapshot), f"basis: {basis_of(readings)}"]
    if snapshot.sampled and any(r.domain for r in readings):
        lines.append(f"domains: {snapshot.sample_note()}")
    return "\n".join([*lines, *(r.evidence() for r in readings), *extra])


def _make(outcome: Outcome, message: str, snapshot: ApiSnapshot, readings: list[Reading],
          extra: tuple[str, ...] = (), keys: tuple[str, ...] = ()) -> Evaluation:
    return Evaluation(outcome, message, evidence(snapshot, readings, *extra), policy_keys=keys,
                      basis=basis_of(readings))


def unusable(snapshot: ApiSnapshot, readings: list[Reading], *extra: str,
             keys: tuple[str, ...] = ()) -> Evaluation | None:
    """Inconclusive (a guessed or unknown value) or skipped (not readable) when a reading is not
    usable, else None."""
    bad = [r for r in readings if not r.ok]
    if not bad:
        return None
    text = "; ".join(r.why_unreadable() for r in bad)
    if any(r.state in (ReadState.GUESSED, ReadState.UNMAPPED) for r in bad):
        return _make(Outcome.INCONCLUSIVE, f"the API's value cannot decide: {text}", snapshot, readings,
                     extra, keys)
    return _make(Outcome.SKIPPED, f"not readable through the API: {text}", snapshot, readings, extra, keys)


def judge(snapshot: ApiSnapshot, readings: list[Reading], check: Check, ok_text: str, *extra: str,
          keys: tuple[str, ...] = (), context: Iterable[Reading] = ()) -> Evaluation:
    """Fail on any definite violation; inconclusive when the policy cannot be applied or a value
    is guessed/unknown; skip if unreadable; else pass. ``context`` readings are shown, not judged."""
    answers = [(r, check(r)) for r in readings if r.ok]
    failures = [a for _, a in answers if isinstance(a, str) and a]
    undecided = [a.text for _, a in answers if isinstance(a, Undecided)]
    lines = (*(r.evidence() for r in context if r not in readings), *extra)
    if failures:
        return _make(Outcome.FAILED, "; ".join(failures), snapshot, readings, lines, keys)
    if undecided:
        return _make(Outcome.INCONCLUSIVE, "; ".join(undecided), snapshot, readings, lines, keys)
    return unusable(snapshot, readings, *lines, keys=keys) or _make(
        Outcome.PASSED, ok_text, snapshot, readings, lines, keys)


def per_domain(snapshot: ApiSnapshot, field_key: str) -> list[Reading]:
    """One reading per domain read (raises ApiError if an endpoint errored)."""
    return [snapshot.read(field_key, domain) for domain in snapshot.domains]


def first_present(snapshot: ApiSnapshot, keys: Iterable[str], domain: str | None = None) -> Reading:
    """The first of several fields (one setting at several places) that the API gave; when none
    is there, the first one, naming every place tried."""
    tried = [snapshot.read(key, domain) for key in keys]
    found = next((r for r in tried if r.present), None)
    if found is not None:
        return found
    detail = "; ".join(f"{r.request} -> {r.json}: {r.detail}" for r in tried)
    return dataclasses.replace(tried[0], detail=detail)


def no_domains(snapshot: ApiSnapshot) -> Evaluation | None:
    """A skip when the domain list could not be read (so per-domain checks cannot run)."""
    if snapshot.domains:
        return None
    listing = snapshot.read("domain_names")
    if listing.ok:
        return _make(Outcome.SKIPPED, "the server hosts no domain (the API's domain list is empty)",
                     snapshot, [listing])
    return unusable(snapshot, [listing])


def sampled(snapshot: ApiSnapshot, evaluation: Evaluation, requirement: str) -> Evaluation:
    """A per-domain verdict over a sample says so; a sample without a violation is not a pass."""
    note = snapshot.sample_note()
    if not note:
        return evaluation
    if evaluation.outcome is Outcome.PASSED:
        raise BudgetExceeded(f"{snapshot.base_url}: {requirement}: {note}; none of them fails, "
                             "but the other domains were not read, so this is no pass",
                             evidence=redact(evaluation.evidence), evidence_name="evidence (domain sample)")
    return dataclasses.replace(evaluation, message=f"{evaluation.message} ({note})")


def _redacted(function: Callable[..., Evaluation]) -> Callable[..., Evaluation]:
    """Every message and evidence block leaves this module through redact()."""
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Evaluation:
        evaluation = function(*args, **kwargs)
        return dataclasses.replace(evaluation, message=redact(evaluation.message),
                                   evidence=redact(evaluation.evidence))
    return wrapper


def _is_true(label: str) -> Check:
    def check(reading: Reading) -> str | None:
        where = f"{reading.domain}: " if reading.domain else ""
        return None if reading.value is True else f"{where}{label} is off (expected on)"
    return check


def _is_false(label: str) -> Check:
    def check(reading: Reading) -> str | None:
        where = f"{reading.domain}: " if reading.domain else ""
        return None if reading.value is False else f"{where}{label}"
    return check


def _on(snapshot: ApiSnapshot, field_key: str, label: str, context: Iterable[Reading] = ()) -> Evaluation:
    reading = snapshot.read(field_key)
    return judge(snapshot, [reading], _is_true(label), f"{label} is on", context=context)


def _context(snapshot: ApiSnapshot, *keys: str) -> list[Reading]:
    """Readings shown for context (not judged); absent ones show why."""
    return [snapshot.read(key) for key in keys]


# --- API-VERSION ------------------------------------------------------------------------------

def build_number(version: str) -> int | None:
    """The build of a version string: the third part of "100.0.9511[.x]" [W3], else the
    first number of three or more digits ("Build 9600", stProductBuild "9511 (2026-01-20)" [W2])."""
    dotted = re.match(r"\s*\d+\.\d+\.(\d+)", version)
    if dotted:
        return int(dotted.group(1))
    numbers = re.findall(r"\d{3,}", version)
    return int(numbers[0]) if numbers else None


@_redacted
def evaluate_version(snapshot: ApiSnapshot, policy: ApiPolicy,
                     vulnerabilities: tuple[Vulnerability, ...] | None = None) -> Evaluation:
    """API-VERSION: build >= the policy minimum; known exploited vulnerabilities are critical."""
    reading = snapshot.read("version")
    keys = ("api.min_build",)
    skipped = unusable(snapshot, [reading], keys=keys)
    if skipped:
        return skipped
    build = build_number(str(reading.value)[:100])
    table = load_vulnerabilities() if vulnerabilities is None else vulnerabilities
    if build is None:
        return _make(Outcome.INCONCLUSIVE, f"version {str(reading.value)[:100]!r} has no build number; "
                     f"check manually: {reading.manual}", snapshot, [reading])
    hits = [v for v in table if v.exploited and v.affects(build)]
    lines = tuple(f"{v.id}: fixed in build {v.fixed_in_build}; {v.title}; sources: {', '.join(v.sources)}"
                  for v in hits)
    if hits:
        fixed = max(v.fixed_in_build for v in hits)
        return dataclasses.replace(_make(
            Outcome.FAILED, f"build {build} has known exploited vulnerabilities {', '.join(v.id for v in hits)} "
            f"(fixed in build {fixed}); upgrade now", snapshot, [reading], lines, keys), severity="critical")
    if build < policy.min_build:
        return dataclasses.replace(_make(
            Outcome.FAILED, f"build {build} is below the policy minimum {policy.min_build}", snapshot,
            [reading], lines, keys), severity="high")
    return _make(Outcome.PASSED, f"build {build} >= policy minimum {policy.min_build}; no known exploited "
                 "vulnerability in the table affects it", snapshot, [reading], lines, keys)


# --- SMTP In ----------------------------------------------------------------------------------

@_redacted
def evaluate_relay(snapshot: ApiSnapshot, policy: ApiPolicy) -> Evaluation:
    """API-RELAY: SMTP In "Allow Relay" is Nobody."""
    reading = snapshot.read("smtp_allow_relay")

    def check(r: Reading) -> str | None:
        if r.value == "nobody":
            return None
        return f"Allow Relay is {RELAY_LABELS.get(r.value, r.value)} (API value {r.raw!r}); expected Nobody"
    return judge(snapshot, [reading], check, "Allow Relay is Nobody",
                 context=_context(snapshot, "smtp_relay_for_authenticated"))


@_redacted
def evaluate_auth_match(snapshot: ApiSnapshot, policy: ApiPolicy) -> Evaluation:
    """API-AUTH-MATCH: "Require Auth Match" is on, at its strictest value (Email Address [E2])."""
    reading = snapshot.read("smtp_require_auth_match")

    def check(r: Reading) -> str | None:
        if r.value in ("email_address", "switch_on"):
            return None
        return f"Require Auth Match is off (API value {r.raw!r}); expected Email Address"
    text = ("Require Auth Match is Email Address (the strictest value)" if reading.value == "email_address"
            else "Require Auth Match is on (this build offers a plain switch, no choice of match)")
    return judge(snapshot, [reading], check, text)


@_redacted
def evaluate_local_delivery_auth(snapshot: ApiSnapshot, policy: ApiPolicy) -> Evaluation:
    """API-LOCAL-DELIVERY-AUTH: the domain's SMTP auth setting applies to local deliveries."""
    return _on(snapshot, "smtp_local_delivery_auth", "Enable domain's SMTP auth setting for local deliveries")


# --- domains ----------------------------------------------------------------------------------

@_redacted
def evaluate_domain_smtp_auth(snapshot: ApiSnapshot, policy: ApiPolicy) -> Evaluation:
    """API-DOMAIN-SMTP-AUTH: every domain, and the domain defaults, require SMTP authentication."""
    readings = [snapshot.read("defaults_require_smtp_auth"), *per_domain(snapshot, "domain_require_smtp_auth")]
    if not snapshot.domains:
        readings.append(snapshot.read("domain_names"))
    label = "Require SMTP Authentication"

    def check(r: Reading) -> str | None:
        if r.key == "domain_names":
            return None
        where = r.domain or "Domain Defaults"
        return None if r.value is True else f"{where}: {label} is off"
    evaluation = judge(snapshot, readings, check,
                       f"{label} is on for the domain defaults and all {len(snapshot.domains)} domains")
    return sampled(snapshot, evaluation, "API-DOMAIN-SMTP-AUTH")


@_redacted
def evaluate_catchall(snapshot: ApiSnapshot, policy: ApiPolicy) -> Evaluation:
    """API-CATCHALL: no domain has a catch-all."""
    skipped = no_domains(snapshot)
    if skipped:
        return skipped

    def check(r: Reading) -> str | None:
        return f"{r.domain}: catch-all {r.value[:100]!r} is set" if r.value.strip() else None
    evaluation = judge(snapshot, per_domain(snapshot, "domain_catch_all"), check,
                       f"none of the {len(snapshot.domains)} domains has a catch-all")
    return sampled(snapshot, evaluation, "API-CATCHALL")


@_redacted
def evaluate_password_policy(snapshot: ApiSnapshot, policy: ApiPolicy) -> Evaluation:
    """API-PASSWORD-POLICY: minimum length and complexity rules meet the policy for every domain.
    The effective requirements [E3] are read first, the password settings [C1] where absent."""
    skipped = no_domains(snapshot)
    if skipped:
        return skipped
    readings: list[Reading] = []
    labels: dict[str, str] = {}
    for domain in snapshot.domains:
        readings.append(first_present(snapshot, MIN_LENGTH_KEYS, domain))
        for rule in policy.password_required_rules:
            reading = first_present(snapshot, PASSWORD_RULES[rule], domain)
            labels[reading.key] = rule
            readings.append(reading)

    def check(r: Reading) -> str | None:
        if r.key in MIN_LENGTH_KEYS:
            shown = r.value if r.value else "rule off"
            return None if r.value >= policy.password_min_length else (
                f"{r.domain}: minimum length {shown} (policy: at least {policy.password_min_length})")
        return None if r.value is True else f"{r.domain}: rule '{labels[r.key]}' is off"
    rules = ", ".join(policy.password_required_rules)
    evaluation = judge(snapshot, readings, check, f"every domain requires at least {policy.password_min_length} "
                       f"characters and the rules {rules}",
                       keys=("api.password_min_length", "api.password_required_rules"))
    return sampled(snapshot, evaluation, "API-PASSWORD-POLICY")


@_redacted
def evaluate_throttling(snapshot: ApiSnapshot, policy: ApiPolicy) -> Evaluation:
    """API-THROTTLING: outgoing messages per hour (and bandwidth) throttled with reject or delay."""
    skipped = no_domains(snapshot)
    if skipped:
        return skipped
    pairs = [("messages", "domain_throttle_messages_per_hour", "domain_throttle_messages_action",
              policy.throttle_max_messages_per_hour, "messages/hour")]
    if policy.throttle_require_bandwidth:
        pairs.append(("bandwidth", "domain_throttle_bandwidth_per_hour", "domain_throttle_bandwidth_action",
                      policy.throttle_max_bandwidth_mb_per_hour, "MB/hour"))
    readings: list[Reading] = []
    for _, limit_key, action_key, _, _ in pairs:
        readings += per_domain(snapshot, limit_key) + per_domain(snapshot, action_key)
    limits = {p[1]: p for p in pairs}
    actions = {p[2]: p for p in pairs}

    def check(r: Reading) -> str | None:
        if r.key in limits:
            name, _, _, most, unit = limits[r.key]
            if r.value <= 0:
                return f"{r.domain}: {name} throttling is off (0 = unlimited)"
            return None if r.value <= most else f"{r.domain}: {name} limit {r.value} {unit} > {most}"
        name = actions[r.key][0]
        allowed = policy.throttle_actions_allowed
        return None if r.value in allowed else f"{r.domain}: {name} action is {r.value} (expected {'/'.join(allowed)})"
    what = " and ".join(f"{p[0]} <= {p[3]} {p[4]}" for p in pairs)
    keys = ("api.throttle_max_messages_per_hour", "api.throttle_require_bandwidth",
            "api.throttle_max_bandwidth_mb_per_hour", "api.throttle_actions_allowed")
    evaluation = judge(snapshot, readings, check, f"every domain throttles {what} with "
                       f"{' or '.join(policy.throttle_actions_allowed)}", keys=keys)
    return sampled(snapshot, evaluation, "API-THROTTLING")


@_redacted
def evaluate_mailing_lists(snapshot: ApiSnapshot, policy: ApiPolicy) -> Evaluation:
    """API-MAILING-LISTS: lists per domain are limited; no list lets anyone post."""
    skipped = no_domains(snapshot)
    if skipped:
        return skipped
    readings = per_domain(snapshot, "domain_max_lists") + per_domain(snapshot, "mailing_lists")
    most = policy.max_lists_per_domain

    def check(r: Reading) -> str | None:
        if r.key == "domain_max_lists":
            if r.value <= 0:
                return f"{r.domain}: mailing lists unlimited (max 0)"
            return None if r.value <= most else f"{r.domain}: up to {r.value} lists allowed (> {most})"
        open_lists = [i["address"] for i in r.value if i["posting"] not in policy.list_posting_allowed]
        return f"{r.domain}: anyone may post to {', '.join(open_lists)}" if open_lists else None
    evaluation = judge(snapshot, readings, check, f"every domain allows at most {most} lists and every list "
                       f"restricts posting to {'/'.join(policy.list_posting_allowed)}",
                       keys=("api.max_lists_per_domain", "api.list_posting_allowed"))
    return sampled(snapshot, evaluation, "API-MAILING-LISTS")


@_redacted
def evaluate_domain_2fa(snapshot: ApiSnapshot, policy: ApiPolicy) -> Evaluation:
    """API-DOMAIN-2FA: every domain enforces two-factor authentication, where the policy requires it."""
    keys = ("api.domain_2fa_required",)
    if not policy.domain_2fa_required:
        return Evaluation(Outcome.SKIPPED, "the policy does not require two-factor authentication per domain "
                          "(api.domain_2fa_required is false)", policy_keys=keys)
    skipped = no_domains(snapshot)
    if skipped:
        return skipped

    def check(r: Reading) -> str | None:
        return None if r.value == "on" else f"{r.domain}: two-factor authentication is off (API value {r.raw!r})"
    context = [r for r in per_domain(snapshot, "domain_auth_blocked_countries") if r.present]
    evaluation = judge(snapshot, per_domain(snapshot, "domain_two_factor"), check,
                       f"all {len(snapshot.domains)} domains have two-factor authentication on", keys=keys,
                       context=context)
    return sampled(snapshot, evaluation, "API-DOMAIN-2FA")


@_redacted
def evaluate_forward_blacklist_bypass(snapshot: ApiSnapshot, policy: ApiPolicy) -> Evaluation:
    """API-FORWARD-BLACKLIST-BYPASS: no domain bypasses the forwarding blacklist."""
    skipped = no_domains(snapshot)
    if skipped:
        return skipped
    evaluation = judge(snapshot, per_domain(snapshot, "domain_bypass_forward_blacklist"),
                       _is_false("bypasses the forwarding blacklist (Bypass Forwarding Blacklist is on)"),
                       f"none of the {len(snapshot.domains)} domains bypasses the forwarding blacklist")
    return sampled(snapshot, evaluation, "API-FORWARD-BLACKLIST-BYPASS")


# --- server-wide settings ---------------------------------------------------------------------

@_redacted
def evaluate_reversible_passwords(snapshot: ApiSnapshot, policy: ApiPolicy) -> Evaluation:
    """API-REVERSIBLE-PASSWORDS: administrators cannot view users' passwords (canViewPasswords in
    the audit account's own sign-in answer is false)."""
    reading = snapshot.read("can_view_passwords")

    def check(r: Reading) -> str | None:
        return None if r.value is False else (
            "administrators can view users' passwords (the sign-in answer says canViewPasswords: true): "
            "passwords are stored reversibly")
    return judge(snapshot, [reading], check, "administrators cannot view users' passwords "
                 "(canViewPasswords is false in the audit account's sign-in answer)")


@_redacted
def evaluate_bounces_spf(snapshot: ApiSnapshot, policy: ApiPolicy) -> Evaluation:
    """API-BOUNCES-SPF: auto-responders and content-filter bounces only for SPF-passing senders (or
    off); SPF levels 2 and 3 both count as a restriction until their order is known [E1]; system
    responses to catch-all messages are off where the build reports them."""
    readings = [snapshot.read("autoresponder_restriction"), snapshot.read("bounce_restriction")]
    names = {"autoresponder_restriction": "auto-responders", "bounce_restriction": "bounces"}
    allowed = policy.bounce_restrictions_allowed
    keys = ("api.bounce_restrictions_allowed",)
    catchall = snapshot.read("catchall_system_responses")
    if catchall.ok:
        readings.append(catchall)

    def check(r: Reading) -> str | Undecided | None:
        if r.key == "catchall_system_responses":
            return None if r.value is False else "system responses to catch-all messages are allowed (expected off)"
        if r.value in allowed:
            return None
        if r.value == "spf_restricted":
            if set(SPF_LEVELS) <= set(allowed):
                return None
            return Undecided(f"{names[r.key]} are restricted to SPF (API value {r.raw!r}), but whether only "
                             f"SPF passes or also senders without SPF is unknown; the policy allows only "
                             f"{', '.join(allowed)}; check at {r.manual}")
        return (f"{names[r.key]} are '{r.value}' (API value {r.raw!r}); expected one of "
                f"{', '.join(allowed)}")
    context = [] if catchall.ok else [catchall]
    return judge(snapshot, readings, check, f"auto-responders and bounces are limited ({', '.join(allowed)})",
                 keys=keys, context=context)


@_redacted
def evaluate_outbound_spam(snapshot: ApiSnapshot, policy: ApiPolicy) -> Evaluation:
    """API-OUTBOUND-SPAM: outgoing messages are spam-checked (SMTP Blocking, outgoing [E1]), as the
    site's policy requires; the incoming twin is shown for context."""
    keys = ("api.outbound_block_required", "api.outbound_block_max_threshold")
    context = _context(snapshot, "outgoing_quarantine_days", "smtp_block_enabled", "smtp_block_threshold")
    if not policy.outbound_block_required:
        return Evaluation(Outcome.SKIPPED, "the policy does not require outgoing SMTP blocking "
                          "(api.outbound_block_required is false)",
                          evidence(snapshot, [snapshot.read("outgoing_block_enabled"), *context]), policy_keys=keys)
    readings = [snapshot.read("outgoing_block_enabled")]
    most = policy.outbound_block_max_threshold
    if most > 0:
        readings.append(snapshot.read("outgoing_block_threshold"))

    def check(r: Reading) -> str | None:
        if r.key == "outgoing_block_enabled":
            return None if r.value is True else "spam checking (SMTP blocking) of outgoing messages is off"
        if r.value <= 0 or r.value > most:
            return f"outgoing messages are blocked only from spam weight {r.value} (policy: at most {most})"
        return None
    return judge(snapshot, readings, check, "outgoing messages are spam-checked and blocked"
                 + (f" from weight {most} or less" if most > 0 else ""), keys=keys, context=context)


@_redacted
def evaluate_spam_whitelist_bypass(snapshot: ApiSnapshot, policy: ApiPolicy) -> Evaluation:
    """API-SPAM-WHITELIST-BYPASS: whitelisted (trusted) IPs do not skip the spam checks."""
    reading = snapshot.read("spam_skip_whitelisted")
    return judge(snapshot, [reading], _is_false("whitelisted IPs skip the spam checks (expected off)"),
                 "whitelisted IPs do not skip the spam checks")


@_redacted
def evaluate_spf_spool_filter(snapshot: ApiSnapshot, policy: ApiPolicy) -> Evaluation:
    """API-SPF-SPOOL-FILTER: the SPF check is enabled for spool filtering ([E1]: one switch)."""
    return _on(snapshot, "spf_spool_filtering", "SPF Spool Filtering",
               context=_context(snapshot, "spf_smtp_in_enabled"))


@_redacted
def evaluate_dmarc_check(snapshot: ApiSnapshot, policy: ApiPolicy) -> Evaluation:
    """API-DMARC-CHECK: the DMARC policy compliance check is enabled."""
    return _on(snapshot, "dmarc_enabled", "the DMARC compliance check")


def tls_readings(snapshot: ApiSnapshot) -> dict[str, Reading]:
    """The Security Protocols switch of every version, by version label (SSLv3 ... TLSv1.3)."""
    return {version: snapshot.read(key) for version, key in TLS_FIELDS.items()}


@_redacted
def evaluate_tls_protocols(snapshot: ApiSnapshot, policy: ApiPolicy) -> Evaluation:
    """API-TLS-PROTOCOLS: the allowed TLS/SSL versions exclude SSL 3, TLS 1.0 and TLS 1.1."""
    by_version = tls_readings(snapshot)
    checked = [by_version[v] for v in policy.forbidden_tls_versions if v in by_version]
    context = [r for v, r in by_version.items() if v not in policy.forbidden_tls_versions and r.ok]
    names = {key: version for version, key in TLS_FIELDS.items()}

    def check(r: Reading) -> str | None:
        return f"{names[r.key]} is allowed" if r.value is True else None
    allowed = [names[r.key] for r in context if r.value is True]
    return judge(snapshot, checked, check, f"{', '.join(policy.forbidden_tls_versions)} are not allowed "
                 f"(allowed: {', '.join(allowed) or 'none read'})", keys=("api.forbidden_tls_versions",),
                 context=context)


def _engine(readings: list[Reading]) -> bool | None:
    """On when any readable switch is on; off when some are readable and all of those are off."""
    known = [r for r in readings if r.ok]
    if any(r.value is True for r in known):
        return True
    return False if known else None


@_redacted
def evaluate_antivirus(snapshot: ApiSnapshot, policy: ApiPolicy) -> Evaluation:
    """API-ANTIVIRUS: ClamAV (antivirus or antispam settings [E1]) or Microsoft Defender (any scan
    switch on [E9]) scans messages; command-line scanners only from the allow-list."""
    clamav = [snapshot.read(k) for k in CLAMAV_KEYS]
    defender = [snapshot.read(k) for k in DEFENDER_KEYS]
    commands = {k: snapshot.read(k) for k in ("av_command_line", "av_command_line_scan_messages",
                                               "av_spool_command_line_enabled", "av_spool_command_line_file")}
    readings = [*clamav, *defender, *commands.values()]
    keys = ("api.av_command_lines_allowed",)
    failures = []
    engines = (_engine(clamav), _engine(defender))
    if engines == (False, False):
        failures.append("no antivirus engine is on (ClamAV and Microsoft Defender both off)")
    allowed = {c.strip().lower() for c in policy.av_command_lines_allowed}
    for switch, command, label in (("av_command_line_scan_messages", "av_command_line", "command-line scanner"),
                                   ("av_spool_command_line_enabled", "av_spool_command_line_file",
                                    "spool command line")):
        on, line = commands[switch], commands[command]
        active = on.ok and line.ok and on.value and line.value.strip()
        if active and line.value.strip().lower() not in allowed:
            failures.append(f"{label} {line.value[:200]!r} is not on the policy's allow-list")
    if failures:
        return _make(Outcome.FAILED, "; ".join(failures), snapshot, readings, keys=keys)
    unknown = [] if True in engines else [
        r for group, state in ((clamav, engines[0]), (defender, engines[1])) if state is None for r in group]
    return unusable(snapshot, unknown + [r for r in commands.values() if not r.ok], keys=keys) or _make(
        Outcome.PASSED, "an antivirus engine scans messages; no command-line scanner outside the allow-list",
        snapshot, readings, keys=keys)


def _network(text: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network] | None:
    """An address, a CIDR network or an "a-b" range as networks; None when it is none of them."""
    text = text.strip()
    try:
        if "-" in text:
            first, last = (ipaddress.ip_address(p.strip()) for p in text.split("-", 1))
            return list(ipaddress.summarize_address_range(first, last))
        return [ipaddress.ip_network(text, strict=False)]
    except (ValueError, TypeError):
        return None


def bypass_address(entry: Any) -> str | None:
    """The address of an SMTP auth bypass entry, whatever key the build uses [E8]."""
    if isinstance(entry, str):
        return entry
    if isinstance(entry, dict):
        for key in BYPASS_ADDRESS_KEYS:
            if isinstance(entry.get(key), str) and entry[key].strip():
                return entry[key].strip()
    return None


@_redacted
def evaluate_smtp_auth_bypass(snapshot: ApiSnapshot, policy: ApiPolicy) -> Evaluation:
    """API-SMTP-AUTH-BYPASS: the bypass list is empty or holds only the policy's allowed IPs.
    Entries are counted whatever their keys; their address is read from ip/ipAddress/address/ipRange."""
    reading = snapshot.read("smtp_auth_bypass")
    allowed = [n for a in policy.smtp_auth_bypass_allowed for n in (_network(a) or [])]

    def covered(address: str) -> bool:
        nets = _network(address)
        return bool(nets) and all(any(n.version == a.version and n.subnet_of(a) for a in allowed) for n in nets)

    def check(r: Reading) -> str | Undecided | None:
        addresses = [bypass_address(e) for e in r.value]
        extra = [a for a in addresses if a is not None and not covered(a)]
        unknown = [e for e, a in zip(r.value, addresses, strict=True) if a is None]
        if extra or (unknown and not allowed):
            shown = extra + [f"{len(unknown)} entr{'y' if len(unknown) == 1 else 'ies'} without a readable "
                             "address"] * bool(unknown)
            return f"{len(r.value)} bypass entr{'y' if len(r.value) == 1 else 'ies'}; may send without SMTP " \
                   f"auth: {', '.join(shown)}"
        if unknown:
            return Undecided(f"{len(unknown)} SMTP auth bypass entries have no address the suite can read "
                             f"(keys {', '.join(sorted({k for e in unknown if isinstance(e, dict) for k in e}))}); "
                             f"check them at {r.manual}")
        return None
    return judge(snapshot, [reading], check, "the SMTP auth bypass list is empty or only holds allowed IPs",
                 keys=("api.smtp_auth_bypass_allowed",))


@_redacted
def evaluate_spool_backlog(snapshot: ApiSnapshot, policy: ApiPolicy) -> Evaluation:
    """API-SPOOL-BACKLOG: the spool holds fewer messages than the policy's threshold."""
    reading = snapshot.read("spool_counts")
    limit = policy.spool_max_messages

    def check(r: Reading) -> str | None:
        total = sum(r.value.values())
        return None if total < limit else f"the spools hold {total} messages (threshold {limit}): a backlog"
    total = sum(reading.value.values()) if reading.ok else 0
    return judge(snapshot, [reading], check, f"the spools hold {total} messages (< {limit})",
                 keys=("api.spool_max_messages",))


# --- IDS and events ---------------------------------------------------------------------------

def _rule_problem(rule: dict[str, Any], limit: IdsRuleLimit) -> str | None:
    if not rule["enabled"]:
        return "disabled"
    if rule["threshold"] <= 0 or rule["threshold"] > limit.max_threshold:
        return f"threshold {rule['threshold']} > {limit.max_threshold}"
    if rule["time_frame_minutes"] < limit.min_time_frame_minutes:
        return f"time frame {rule['time_frame_minutes']} min < {limit.min_time_frame_minutes}"
    if rule["block_minutes"] < limit.min_block_minutes:
        return f"block time {rule['block_minutes']} min < {limit.min_block_minutes}"
    return None


@_redacted
def evaluate_ids_rules(snapshot: ApiSnapshot, policy: ApiPolicy) -> Evaluation:
    """API-IDS-RULES: Internal Spammer, harvesting, brute force and DoS rules on within thresholds."""
    reading = snapshot.read("ids_rules")

    def check(r: Reading) -> str | None:
        problems = []
        for kind, limit in policy.ids_rules.items():
            rules = [rule for rule in r.value if rule["type"] == kind]
            found = [_rule_problem(rule, limit) for rule in rules]
            if not rules:
                problems.append(f"no {IDS_LABELS.get(kind, kind)} rule")
            elif None not in found:
                problems.append(f"{IDS_LABELS.get(kind, kind)}: {'; '.join(sorted(set(found)))}")
        return "; ".join(problems) or None
    kinds = ", ".join(IDS_LABELS.get(k, k) for k in policy.ids_rules)
    return judge(snapshot, [reading], check, f"enabled IDS rules within the policy's limits: {kinds}",
                 keys=("api.ids_rules",))


def _notifies(actions: Any) -> bool:
    """True when a hook has an action that reaches someone (an email, a notification, an SMS)."""
    if not isinstance(actions, list):
        return False
    for action in actions:
        if not isinstance(action, dict):
            continue
        kind = str(action.get("actionType", action.get("type", ""))).lower()
        inputs = action.get("inputs") or []
        has_target = any(isinstance(i, dict) and str(i.get("value") or "").strip() for i in inputs)
        if any(word in kind for word in ("email", "notif", "sms")) and (has_target or "notif" in kind):
            return True
    return False


@_redacted
def evaluate_system_events(snapshot: ApiSnapshot, policy: ApiPolicy) -> Evaluation:
    """API-SYSTEM-EVENTS: memory and spool-count system events are enabled and notify someone."""
    reading = snapshot.read("system_events")

    def check(r: Reading) -> str | None:
        problems = []
        for event in policy.system_events_required:
            hooks = [h for h in r.value if h["event"] == event]
            label = EVENT_LABELS.get(event, event)
            if not hooks:
                problems.append(f"no {label} event")
            elif not any(h["enabled"] for h in hooks):
                problems.append(f"the {label} event is disabled")
            elif not any(h["enabled"] and _notifies(h["actions"]) for h in hooks):
                problems.append(f"the {label} event notifies nobody (no email/notification action)")
        return "; ".join(problems) or None
    events = ", ".join(EVENT_LABELS.get(e, e) for e in policy.system_events_required)
    return judge(snapshot, [reading], check, f"the {events} events are enabled and notify someone",
                 keys=("api.system_events_required",))


# --- registry ---------------------------------------------------------------------------------

EVALUATORS: dict[str, Callable[[ApiSnapshot, ApiPolicy], Evaluation]] = {
    "API-VERSION": evaluate_version,
    "API-RELAY": evaluate_relay,
    "API-AUTH-MATCH": evaluate_auth_match,
    "API-LOCAL-DELIVERY-AUTH": evaluate_local_delivery_auth,
    "API-DOMAIN-SMTP-AUTH": evaluate_domain_smtp_auth,
    "API-CATCHALL": evaluate_catchall,
    "API-BOUNCES-SPF": evaluate_bounces_spf,
    "API-PASSWORD-POLICY": evaluate_password_policy,
    "API-THROTTLING": evaluate_throttling,
    "API-OUTBOUND-SPAM": evaluate_outbound_spam,
    "API-IDS-RULES": evaluate_ids_rules,
    "API-SYSTEM-EVENTS": evaluate_system_events,
    "API-MAILING-LISTS": evaluate_mailing_lists,
    "API-SPF-SPOOL-FILTER": evaluate_spf_spool_filter,
    "API-DMARC-CHECK": evaluate_dmarc_check,
    "API-TLS-PROTOCOLS": evaluate_tls_protocols,
    "API-ANTIVIRUS": evaluate_antivirus,
    "API-SMTP-AUTH-BYPASS": evaluate_smtp_auth_bypass,
    "API-SPOOL-BACKLOG": evaluate_spool_backlog,
    "API-DOMAIN-2FA": evaluate_domain_2fa,
    "API-REVERSIBLE-PASSWORDS": evaluate_reversible_passwords,
    "API-SPAM-WHITELIST-BYPASS": evaluate_spam_whitelist_bypass,
    "API-FORWARD-BLACKLIST-BYPASS": evaluate_forward_blacklist_bypass,
}
