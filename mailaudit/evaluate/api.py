"""Judging the SmarterMail settings snapshot against the policy (API-* requirements). Pure.

Every function takes the :class:`~mailaudit.fieldmap.ApiSnapshot` and the policy's ``api``
section and returns an Evaluation. A field the API did not give (404 endpoint, missing field) makes
the requirement *skipped* with the manual-check place; a value the field map does not know makes it
*inconclusive*; a definite non-compliant value found elsewhere still fails. A field whose endpoint
errored raises ApiError (the test is an error): never a pass.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Callable, Iterable
from typing import Any

from mailaudit.fieldmap import ApiSnapshot, Reading, ReadState
from mailaudit.policy import ApiPolicy, IdsRuleLimit
from mailaudit.verdict import Evaluation
from mailaudit.vulns import Vulnerability, load_vulnerabilities

RELAY_LABELS = {"nobody": "Nobody", "local_users": "Only Local Users",
                "local_domains": "Only Local Domains", "anyone": "Anyone"}
TLS_FIELDS = {"SSLv3": "tls_ssl3_enabled", "TLSv1.0": "tls_tls10_enabled", "TLSv1.1": "tls_tls11_enabled",
              "TLSv1.2": "tls_tls12_enabled", "TLSv1.3": "tls_tls13_enabled"}
PASSWORD_RULES = {"capital": "pw_require_capital", "lower": "pw_require_lower", "number": "pw_require_number",
                  "symbol": "pw_require_symbol", "not_username": "pw_not_username",
                  "prevent_common": "pw_prevent_common"}
IDS_LABELS = {"internal_spammer": "Internal Spammer", "harvesting": "Bad SMTP Sessions (harvesting)",
              "brute_force": "Password Brute Force", "dos": "Denial of Service"}
EVENT_LABELS = {"memory": "Memory", "spool_count": "Spool Count"}

Check = Callable[[Reading], str | None]     # None = compliant, else the failure text


# --- shared helpers ---------------------------------------------------------------------------

def header(snapshot: ApiSnapshot) -> str:
    """The first evidence line: which API, which account, whether TLS was verified."""
    tls = "verified" if snapshot.tls_verified else "NOT verified (--api-insecure)"
    return f"API {snapshot.base_url} as {snapshot.user!r}; TLS certificate {tls}"


def evidence(snapshot: ApiSnapshot, readings: Iterable[Reading], *extra: str) -> str:
    """The evidence block: header, one line per reading, extra lines."""
    return "\n".join([header(snapshot), *(r.evidence() for r in readings), *extra])


def unusable(snapshot: ApiSnapshot, readings: list[Reading], *extra: str) -> Evaluation | None:
    """Skip (not readable) or inconclusive (unknown value) when a reading is unusable, else None."""
    bad = [r for r in readings if not r.ok]
    if not bad:
        return None
    text = "; ".join(r.why_unreadable() for r in bad)
    proof = evidence(snapshot, readings, *extra)
    if any(r.state is ReadState.UNMAPPED for r in bad):
        return Evaluation.inconclusive_(f"the API gave a value the field map does not know: {text}", proof)
    return Evaluation.skipped_(f"not readable through the API: {text}", proof)


def judge(snapshot: ApiSnapshot, readings: list[Reading], check: Check, ok_text: str,
          *extra: str) -> Evaluation:
    """Fail on any definite violation; else skip/inconclusive if unreadable; else pass."""
    failures = [f for r in readings if r.ok and (f := check(r))]
    proof = evidence(snapshot, readings, *extra)
    if failures:
        return Evaluation.failed_("; ".join(failures), proof)
    return unusable(snapshot, readings, *extra) or Evaluation.passed_(ok_text, proof)


def per_domain(snapshot: ApiSnapshot, field_key: str) -> list[Reading]:
    """One reading per hosted domain (raises ApiError if an endpoint errored)."""
    return [snapshot.read(field_key, domain) for domain in snapshot.domains]


def no_domains(snapshot: ApiSnapshot) -> Evaluation | None:
    """A skip when the domain list could not be read (so per-domain checks cannot run)."""
    if snapshot.domains:
        return None
    listing = snapshot.read("domain_names")
    if listing.ok:
        return Evaluation.skipped_("the server hosts no domain (the API's domain list is empty)",
                                   evidence(snapshot, [listing]))
    return unusable(snapshot, [listing])


def _is_true(label: str) -> Check:
    def check(reading: Reading) -> str | None:
        where = f"{reading.domain}: " if reading.domain else ""
        return None if reading.value is True else f"{where}{label} is off (expected on)"
    return check


def _on(snapshot: ApiSnapshot, field_key: str, label: str) -> Evaluation:
    reading = snapshot.read(field_key)
    return judge(snapshot, [reading], _is_true(label), f"{label} is on")


# --- API-VERSION ------------------------------------------------------------------------------

def build_number(version: str) -> int | None:
    """The build of a version string: the third part of "100.0.9511[.x]" [W3], else the
    first number of three or more digits ("Build 9600", stProductBuild "9511 (2026-01-20)" [W2])."""
    dotted = re.match(r"\s*\d+\.\d+\.(\d+)", version)
    if dotted:
        return int(dotted.group(1))
    numbers = re.findall(r"\d{3,}", version)
    return int(numbers[0]) if numbers else None


def evaluate_version(snapshot: ApiSnapshot, policy: ApiPolicy,
                     vulnerabilities: tuple[Vulnerability, ...] | None = None) -> Evaluation:
    """API-VERSION: build >= the policy minimum; known exploited vulnerabilities are critical."""
    reading = snapshot.read("version")
    skipped = unusable(snapshot, [reading])
    if skipped:
        return skipped
    build = build_number(str(reading.value))
    table = load_vulnerabilities() if vulnerabilities is None else vulnerabilities
    if build is None:
        return Evaluation.inconclusive_(f"version {reading.value!r} has no build number; "
                                        f"check manually: {reading.manual}", evidence(snapshot, [reading]))
    hits = [v for v in table if v.exploited and v.affects(build)]
    proof = evidence(snapshot, [reading], *(f"{v.id}: fixed in build {v.fixed_in_build}; {v.title}; "
                                            f"sources: {', '.join(v.sources)}" for v in hits))
    if hits:
        fixed = max(v.fixed_in_build for v in hits)
        return dataclasses.replace(Evaluation.failed_(
            f"build {build} has known exploited vulnerabilities {', '.join(v.id for v in hits)} "
            f"(fixed in build {fixed}); upgrade now", proof), severity="critical")
    if build < policy.min_build:
        return dataclasses.replace(Evaluation.failed_(
            f"build {build} is below the policy minimum {policy.min_build}", proof), severity="high")
    return Evaluation.passed_(f"build {build} >= policy minimum {policy.min_build}; "
                              "no known exploited vulnerability in the table affects it", proof)


# --- SMTP In ----------------------------------------------------------------------------------

def evaluate_relay(snapshot: ApiSnapshot, policy: ApiPolicy) -> Evaluation:
    """API-RELAY: SMTP In "Allow Relay" is Nobody."""
    reading = snapshot.read("smtp_allow_relay")

    def check(r: Reading) -> str | None:
        if r.value == "nobody":
            return None
        return f"Allow Relay is {RELAY_LABELS.get(r.value, r.value)} (API value {r.raw!r}); expected Nobody"
    return judge(snapshot, [reading], check, "Allow Relay is Nobody")


def evaluate_auth_match(snapshot: ApiSnapshot, policy: ApiPolicy) -> Evaluation:
    """API-AUTH-MATCH: "Require Auth Match" is on."""
    return _on(snapshot, "smtp_require_auth_match", "Require Auth Match")


def evaluate_local_delivery_auth(snapshot: ApiSnapshot, policy: ApiPolicy) -> Evaluation:
    """API-LOCAL-DELIVERY-AUTH: the domain's SMTP auth setting applies to local deliveries."""
    return _on(snapshot, "smtp_local_delivery_auth", "Enable domain's SMTP auth setting for local deliveries")


# --- domains ----------------------------------------------------------------------------------

def evaluate_domain_smtp_auth(snapshot: ApiSnapshot, policy: ApiPolicy) -> Evaluation:
    """API-DOMAIN-SMTP-AUTH: every domain, and the domain defaults, require SMTP authentication."""
    readings = [snapshot.read("defaults_require_smtp_auth"), *per_domain(snapshot, "domain_require_smtp_auth")]
    if not snapshot.domains:
        listing = snapshot.read("domain_names")
        readings.append(listing)
    label = "Require SMTP Authentication"

    def check(r: Reading) -> str | None:
        if r.key == "domain_names":
            return None
        where = r.domain or "Domain Defaults"
        return None if r.value is True else f"{where}: {label} is off"
    return judge(snapshot, readings, check,
                 f"{label} is on for the domain defaults and all {len(snapshot.domains)} domains")


def evaluate_catchall(snapshot: ApiSnapshot, policy: ApiPolicy) -> Evaluation:
    """API-CATCHALL: no domain has a catch-all."""
    skipped = no_domains(snapshot)
    if skipped:
        return skipped

    def check(r: Reading) -> str | None:
        return f"{r.domain}: catch-all {r.value!r} is set" if r.value.strip() else None
    return judge(snapshot, per_domain(snapshot, "domain_catch_all"), check,
                 f"none of the {len(snapshot.domains)} domains has a catch-all")


def evaluate_password_policy(snapshot: ApiSnapshot, policy: ApiPolicy) -> Evaluation:
    """API-PASSWORD-POLICY: minimum length and complexity rules meet the policy for every domain."""
    skipped = no_domains(snapshot)
    if skipped:
        return skipped
    readings = per_domain(snapshot, "pw_min_length")
    for rule in policy.password_required_rules:
        readings += per_domain(snapshot, PASSWORD_RULES[rule])
    labels = {v: k for k, v in PASSWORD_RULES.items()}

    def check(r: Reading) -> str | None:
        if r.key == "pw_min_length":
            shown = r.value if r.value else "rule off"
            return None if r.value >= policy.password_min_length else (
                f"{r.domain}: minimum length {shown} (policy: at least {policy.password_min_length})")
        return None if r.value is True else f"{r.domain}: rule '{labels[r.key]}' is off"
    rules = ", ".join(policy.password_required_rules)
    return judge(snapshot, readings, check, f"every domain requires at least {policy.password_min_length} "
                 f"characters and the rules {rules}")


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
    return judge(snapshot, readings, check, f"every domain throttles {what} with "
                 f"{' or '.join(policy.throttle_actions_allowed)}")


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
    return judge(snapshot, readings, check, f"every domain allows at most {most} lists and every list "
                 f"restricts posting to {'/'.join(policy.list_posting_allowed)}")


# --- server-wide settings ---------------------------------------------------------------------

def evaluate_bounces_spf(snapshot: ApiSnapshot, policy: ApiPolicy) -> Evaluation:
    """API-BOUNCES-SPF: bounces and auto-responders only for SPF-passing senders (or off)."""
    readings = [snapshot.read("autoresponder_restriction"), snapshot.read("bounce_restriction")]
    names = {"autoresponder_restriction": "auto-responders", "bounce_restriction": "bounces"}
    allowed = policy.bounce_restrictions_allowed

    def check(r: Reading) -> str | None:
        return None if r.value in allowed else (
            f"{names[r.key]} are '{r.value}' (API value {r.raw!r}); expected one of {', '.join(allowed)}")
    return judge(snapshot, readings, check, f"auto-responders and bounces are limited ({', '.join(allowed)})")


def evaluate_outbound_spam(snapshot: ApiSnapshot, policy: ApiPolicy) -> Evaluation:
    """API-OUTBOUND-SPAM: outgoing messages are spam-checked."""
    return _on(snapshot, "outgoing_spam_check", "spam checking of outgoing messages")


def evaluate_spf_spool_filter(snapshot: ApiSnapshot, policy: ApiPolicy) -> Evaluation:
    """API-SPF-SPOOL-FILTER: the SPF check is on and has spool filtering enabled."""
    readings = [snapshot.read("spf_check_enabled"), snapshot.read("spf_spool_filtering")]
    labels = {"spf_check_enabled": "the SPF check", "spf_spool_filtering": "SPF Enable Spool Filtering"}

    def check(r: Reading) -> str | None:
        return None if r.value is True else f"{labels[r.key]} is off"
    return judge(snapshot, readings, check, "the SPF check is on with spool filtering")


def evaluate_dmarc_check(snapshot: ApiSnapshot, policy: ApiPolicy) -> Evaluation:
    """API-DMARC-CHECK: the DMARC policy compliance check is enabled."""
    return _on(snapshot, "dmarc_enabled", "the DMARC compliance check")


def tls_readings(snapshot: ApiSnapshot) -> dict[str, Reading]:
    """The Security Protocols switch of every version, by version label (SSLv3 ... TLSv1.3)."""
    return {version: snapshot.read(key) for version, key in TLS_FIELDS.items()}


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
                 f"(allowed: {', '.join(allowed) or 'none read'})", *(r.evidence() for r in context))


def evaluate_antivirus(snapshot: ApiSnapshot, policy: ApiPolicy) -> Evaluation:
    """API-ANTIVIRUS: ClamAV or Windows Defender scans messages; command-line scanners allowed."""
    keys = ("av_clamav_enabled", "av_defender_enabled", "av_command_line", "av_command_line_scan_messages",
            "av_spool_command_line_enabled", "av_spool_command_line_file")
    r = {key: snapshot.read(key) for key in keys}
    readings = list(r.values())
    failures = []
    engines_read = r["av_clamav_enabled"].ok and r["av_defender_enabled"].ok
    if engines_read and not (r["av_clamav_enabled"].value or r["av_defender_enabled"].value):
        failures.append("no antivirus engine is on (ClamAV and Windows Defender both off)")
    allowed = {c.strip().lower() for c in policy.av_command_lines_allowed}
    for switch, command, label in (("av_command_line_scan_messages", "av_command_line", "command-line scanner"),
                                   ("av_spool_command_line_enabled", "av_spool_command_line_file",
                                    "spool command line")):
        active = r[switch].ok and r[command].ok and r[switch].value and r[command].value.strip()
        if active and r[command].value.strip().lower() not in allowed:
            failures.append(f"{label} {r[command].value!r} is not on the policy's allow-list")
    proof = evidence(snapshot, readings)
    if failures:
        return Evaluation.failed_("; ".join(failures), proof)
    return unusable(snapshot, readings) or Evaluation.passed_(
        "an antivirus engine scans messages; no command-line scanner outside the allow-list", proof)


def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


def evaluate_smtp_auth_bypass(snapshot: ApiSnapshot, policy: ApiPolicy) -> Evaluation:
    """API-SMTP-AUTH-BYPASS: the bypass list is empty or holds only the policy's allowed IPs."""
    reading = snapshot.read("smtp_auth_bypass")
    allowed = [n for n in (_network(a) for a in policy.smtp_auth_bypass_allowed) if n is not None]

    def covered(entry: str) -> bool:
        net = _network(entry)
        return net is not None and any(net.version == a.version and net.subnet_of(a) for a in allowed)

    def check(r: Reading) -> str | None:
        extra = [str(i["ip"]) for i in r.value if not covered(str(i["ip"]))]
        return f"IPs may send without SMTP auth: {', '.join(extra)}" if extra else None
    return judge(snapshot, [reading], check, "the SMTP auth bypass list is empty or only holds allowed IPs")


def evaluate_spool_backlog(snapshot: ApiSnapshot, policy: ApiPolicy) -> Evaluation:
    """API-SPOOL-BACKLOG: the spool holds fewer messages than the policy's threshold."""
    reading = snapshot.read("spool_counts")
    limit = policy.spool_max_messages

    def check(r: Reading) -> str | None:
        total = sum(r.value.values())
        return None if total < limit else f"the spools hold {total} messages (threshold {limit}): a backlog"
    total = sum(reading.value.values()) if reading.ok else 0
    return judge(snapshot, [reading], check, f"the spools hold {total} messages (< {limit})")


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
    return judge(snapshot, [reading], check, f"enabled IDS rules within the policy's limits: {kinds}")


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
    return judge(snapshot, [reading], check, f"the {events} events are enabled and notify someone")


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
}
