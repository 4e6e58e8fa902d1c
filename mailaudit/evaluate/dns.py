"""Judging DNS probe results against the policy: pure functions, unit-tested offline.

Each ``evaluate_*`` takes what :mod:`mailaudit.probes.dns` collected and returns an
:class:`~mailaudit.verdict.Evaluation` whose message says expected vs observed and whose evidence
holds the records read (and, for SPF, the include tree with its lookup counts). Where a policy
threshold decides, the evaluation names its leaf in ``policy_keys``.

A requirement that depends on a record never passes when the record itself is invalid or
duplicated: DMARC-POLICY and -REPORTING fail (no DMARC policy is enforced, no report is assured),
SPF-POLICY and -AUTHORIZES-SERVER fail (check_host() returns permerror), and SPF-LOOKUPS fails on
a loop and raises CannotJudge when the lookups cannot be counted (a syntax error).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import hashlib
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

from mailaudit.dns_records import MtaStsPolicy, mta_sts_record_errors, parse_mta_sts_policy, tlsrpt_record
from mailaudit.errors import BudgetExceeded, CannotJudge
from mailaudit.policy import DnsblZone, DnsPolicy
from mailaudit.probes.dns import (
    MAX_POLICY_BYTES,
    Answer,
    DaneProbe,
    DmarcProbe,
    DmarcRecordCheck,
    DnsblLookup,
    DnsblProbe,
    MtaStsProbe,
    MxProbe,
    PtrProbe,
)
from mailaudit.probes.spf import SpfAuthorization, SpfProbe, SpfRecordCheck
from mailaudit.resolver import is_ip
from mailaudit.verdict import Evaluation

DMARC_RANK = {"none": 0, "quarantine": 1, "reject": 2}
NEVER_ALLOWED_ALL = ("+all", "?all")
SPF_EVIDENCE = "SPF records, RFC 7208 parse and include tree"
DMARC_EVIDENCE = "DMARC records and RFC 7489 parse"


def _lines(*parts: str) -> str:
    return "\n".join(p for p in parts if p)


def _short(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def evidence_named(name: str, *policy_keys: str) -> Callable[[Callable[..., Evaluation]], Callable[..., Evaluation]]:
    """Give the evidence of every Evaluation a function returns a name for the report, and name the
    policy leaves whose thresholds decide it (unless the evaluation names its own)."""
    def decorate(func: Callable[..., Evaluation]) -> Callable[..., Evaluation]:
        @functools.wraps(func)
        def wrapper(*args: object, **kwargs: object) -> Evaluation:
            evaluation = func(*args, **kwargs)
            return dataclasses.replace(evaluation, evidence_name=name,
                                       policy_keys=evaluation.policy_keys or policy_keys)
        return wrapper
    return decorate


# --- MX ---------------------------------------------------------------------------------------

@evidence_named("MX records and host addresses")
def evaluate_mx(probe: MxProbe, server_ip: str) -> Evaluation:
    """MX records exist, every host resolves (no alias), and one of them is the audited server."""
    evidence = _mx_evidence(probe)
    if probe.null_mx:
        return Evaluation.skipped_(
            f"{probe.domain} publishes a null MX (RFC 7505): it accepts no mail, so MX reachability "
            "does not apply", evidence)
    if not probe.hosts:
        return Evaluation.failed_(
            f"{probe.domain}: expected MX records, found none ({probe.answer.status}); senders fall "
            "back to the A record (RFC 5321 §5.1)", evidence)
    problems = [p for host in probe.hosts for p in _mx_host_problems(host)]
    if not any(server_ip in h.addresses for h in probe.hosts):
        problems.append(f"the server {server_ip} is not the address of any MX host")
    names = ", ".join(f"{h.preference} {h.name}" for h in probe.hosts)
    if problems:
        return Evaluation.failed_(f"{probe.domain} MX {names}: " + "; ".join(problems), evidence)
    return Evaluation.passed_(f"{probe.domain} MX {names}: every host resolves; {server_ip} is reached", evidence)


def _mx_host_problems(host) -> list[str]:
    problems = []
    if host.name == ".":
        problems.append("a null MX beside other MX records (RFC 7505 §3)")
    elif not host.addresses:
        problems.append(f"{host.name} has no A/AAAA record (dangling MX)")
    if host.cname:
        problems.append(f"{host.name} is an alias of {host.cname} (RFC 2181 §10.3: an MX must not name a CNAME)")
    if is_ip(host.name):
        problems.append(f"{host.name} is an address, not a host name (RFC 7505 §2)")
    return problems


def _mx_evidence(probe: MxProbe) -> str:
    lines = [probe.answer.line()]
    lines += [f"  {h.preference} {h.name} -> {', '.join(h.addresses) or '(no address)'}"
              + (f" (CNAME {h.cname})" if h.cname else "") for h in probe.hosts]
    return "\n".join(lines)


# --- SPF --------------------------------------------------------------------------------------

def _count(check: SpfRecordCheck) -> str:
    return f"at least {check.lookups}" if check.walk.partial else str(check.lookups)


def spf_evidence(probe: SpfProbe) -> str:
    """TXT records at the domain, then per SPF record its parse and the include tree with counts."""
    parts = [probe.txt.line()]
    for check in probe.records:
        walk = check.walk
        syntax = ("syntax: valid (RFC 7208)" if check.syntax.valid else
                  "syntax errors: " + "; ".join(check.syntax.errors))
        notes = [f"  warning: {w}" for w in check.syntax.warnings]
        notes += [f"  permerror: {p}" for p in check.problems if not p.startswith("syntax error")]
        notes += [f"  stopped: {walk.stop}"] if walk.stop else []
        parts.append(_lines(f"\nSPF record: {check.record}", syntax, *notes,
                            f"lookup tree ({_count(check)} DNS-querying terms, {walk.voids} void; "
                            f"{walk.queries} queries):", check.tree.render(1)))
    return "\n".join(parts)


def spf_problem(probe: SpfProbe) -> tuple[str, str] | None:
    """Why check_host() cannot give a verdict from the domain's SPF whatever the IP: ("none" or
    "permerror", reason naming the record and the problem); None when one valid record was found."""
    if not probe.records:
        return "none", f"no SPF record at {probe.domain} ({probe.txt.status})"
    if len(probe.records) > 1:
        return "permerror", f"{len(probe.records)} SPF records at {probe.domain} (RFC 7208 §4.5: permerror)"
    check = probe.records[0]
    if check.problems:
        more = f" (and {len(check.problems) - 1} more)" if len(check.problems) > 1 else ""
        return "permerror", f"the SPF record '{_short(check.record)}' is invalid: {check.problems[0]}{more}"
    return None


@evidence_named(SPF_EVIDENCE)
def evaluate_spf_record(probe: SpfProbe) -> Evaluation:
    """Exactly one SPF record, valid by the RFC 7208 grammar, with no loop or broken include."""
    evidence = spf_evidence(probe)
    if not probe.records:
        return Evaluation.failed_(
            f"{probe.domain}: expected one SPF record, found none ({probe.txt.status}, "
            f"{len(probe.txt.records)} TXT records)", evidence)
    if len(probe.records) > 1:
        shown = " | ".join(c.record for c in probe.records)
        return Evaluation.failed_(f"{probe.domain}: expected one SPF record, found {len(probe.records)} "
                                  f"(RFC 7208 §4.5: permerror): {shown}", evidence)
    check = probe.records[0]
    if check.problems:
        return Evaluation.failed_(f"{probe.domain}: SPF record invalid: '{_short(check.record)}': "
                                  + "; ".join(check.problems), evidence)
    if check.walk.stop_kind == "queries":
        raise BudgetExceeded(f"{probe.domain}: {check.walk.stop}; the included records were not all checked",
                             evidence=evidence, evidence_name=SPF_EVIDENCE)
    unresolved = (f" (includes with macros, checked per message only: {', '.join(check.walk.unresolved)})"
                  if check.walk.unresolved else "")
    return Evaluation.passed_(f"{probe.domain}: one valid SPF record: {check.record}{unresolved}", evidence)


def effective_all(check: SpfRecordCheck) -> str | None:
    """The record's ``all`` term, or that of its redirect target (RFC 7208 §6.1)."""
    return check.all_term or check.syntax.all_term


def _all_as_published(check: SpfRecordCheck) -> str:
    term = effective_all(check)
    return f"'{_short(check.record)}' ends in {term}" if term else \
        f"'{_short(check.record)}' has no all (the default result is neutral, like ?all)"


@evidence_named(SPF_EVIDENCE, "dns.spf_allowed_all")
def evaluate_spf_policy(probe: SpfProbe, policy: DnsPolicy) -> Evaluation:
    """One valid SPF record ending in an ``all`` the policy allows; never ``+all``/``?all`` or none."""
    evidence = spf_evidence(probe)
    allowed = " or ".join(policy.spf_allowed_all)
    if not probe.records:
        return Evaluation.failed_(f"{probe.domain}: expected an SPF record ending in {allowed}; there is no SPF record",
                                  evidence)
    published = "; ".join(_all_as_published(c) for c in probe.records)
    problem = spf_problem(probe)
    if problem:
        return Evaluation.failed_(f"{probe.domain}: expected {allowed}; {problem[1]}, so no SPF policy applies "
                                  f"(as published: {published})", evidence)
    term = effective_all(probe.records[0])
    if term is None or term in NEVER_ALLOWED_ALL or term not in policy.spf_allowed_all:
        return Evaluation.failed_(f"{probe.domain}: expected {allowed}; {published}", evidence)
    return Evaluation.passed_(f"{probe.domain}: SPF ends in {term} (allowed: {allowed})", evidence)


def _lookup_findings(check: SpfRecordCheck, policy: DnsPolicy, label: str) -> tuple[list[str], list[str]]:
    """(failures, reasons it cannot be counted) for one record."""
    walk = check.walk
    if not check.syntax.valid:
        return [], [f"{label} has a syntax error ({check.syntax.errors[0]}): check_host() returns permerror "
                    "before any lookup, so its lookups cannot be counted"]
    failures = [f"{label}: include loop {loop}: check_host() would run past the limit of {policy.spf_max_lookups} "
                "DNS-querying terms (RFC 7208 §4.6.4: permerror)" for loop in walk.loops]
    over = []
    if check.lookups > policy.spf_max_lookups:
        over.append(f"{_count(check)} DNS-querying terms (limit {policy.spf_max_lookups})")
    if check.voids > policy.spf_max_void_lookups:
        over.append(f"{check.voids} void lookups (limit {policy.spf_max_void_lookups})")
    if over:
        stop = f"; check_host() stops with permerror: {walk.stop}" if walk.stop_kind in ("terms", "voids") else ""
        failures.append(f"{label} needs " + "; ".join(over) + f" — RFC 7208 §4.6.4: permerror{stop}")
    unknown = [f"{label}: {p}: check_host() returns permerror there, so the count stops short"
               for p in walk.permerrors]
    return failures, unknown


@evidence_named(SPF_EVIDENCE, "dns.spf_max_lookups", "dns.spf_max_void_lookups")
def evaluate_spf_lookups(probe: SpfProbe, policy: DnsPolicy) -> Evaluation:
    """At most ``spf_max_lookups`` DNS-querying terms and ``spf_max_void_lookups`` voids, recursively;
    a loop fails; a record whose lookups cannot be counted (syntax error) is an error, never a pass."""
    evidence = spf_evidence(probe)
    if not probe.records:
        return Evaluation.skipped_(f"{probe.domain}: no SPF record, no lookups to count (DNS-SPF-RECORD fails)",
                                   evidence)
    several = len(probe.records) > 1
    failures, unknown = [], []
    for check in probe.records:
        label = f"'{_short(check.record)}'" if several else "SPF"
        found, cannot = _lookup_findings(check, policy, label)
        failures += found
        unknown += cannot
    if failures:
        return Evaluation.failed_(f"{probe.domain}: " + "; ".join(failures + unknown), evidence)
    capped = [c.walk.stop for c in probe.records if c.walk.stop_kind == "queries"]
    if capped:
        raise BudgetExceeded(f"{probe.domain}: {capped[0]}", evidence=evidence, evidence_name=SPF_EVIDENCE)
    counts = "; ".join(f"{c.lookups} DNS-querying terms, {c.voids} void lookups" for c in probe.records)
    if unknown or several:
        reason = "; ".join(unknown) or (f"{len(probe.records)} SPF records (RFC 7208 §4.5: permerror before any "
                                        f"lookup; DNS-SPF-RECORD fails); each alone needs {counts}")
        raise CannotJudge(f"{probe.domain}: {reason}", evidence=evidence, evidence_name=SPF_EVIDENCE)
    limits = f"limits {policy.spf_max_lookups} lookups, {policy.spf_max_void_lookups} void"
    unresolved = probe.records[0].walk.unresolved
    if unresolved:
        return Evaluation.inconclusive_(
            f"{probe.domain}: SPF needs {counts} ({limits}) plus what {', '.join(unresolved)} expands to per "
            "message (macros): the total cannot be known in advance", evidence)
    return Evaluation.passed_(f"{probe.domain}: SPF needs {counts} ({limits})", evidence)


@evidence_named("pyspf result and SPF include tree")
def evaluate_spf_authorizes(probe: SpfProbe, authorization: SpfAuthorization) -> Evaluation:
    """pyspf's result is ``pass`` for every outbound IP of the server; an SPF that is missing or
    invalid authorizes nobody (check_host() returns none or permerror)."""
    domain = probe.domain
    problem = spf_problem(probe)
    if problem:
        result, reason = problem
        full = _lines(f"check_host() for {', '.join(authorization.ips)}: {result} ({reason}); pyspf not run",
                      "", spf_evidence(probe))
        whole = len(probe.records) != 1 or not probe.records[0].syntax.valid  # permerror for every IP
        if whole:
            found = "; ".join(f"{ip} evaluates to {result}: {reason}" for ip in authorization.ips)
        else:
            found = (f"the SPF is broken, {reason}: check_host() returns permerror wherever evaluation reaches "
                     f"it, so it authorizes no server reliably ({', '.join(authorization.ips)} not judged a pass)")
        return Evaluation.failed_(f"{domain}: expected SPF pass for every server IP; {found}", full)
    results = authorization.results
    if not results:
        raise CannotJudge(f"{domain}: SPF was not evaluated for {', '.join(authorization.ips) or 'any IP'}")
    shown = "; ".join(f"{r.ip}: {r.result} ({r.explanation}; {r.lookups} lookups)" for r in results)
    full = _lines(f"pyspf check_host(ip, {domain}, postmaster@{domain}):", shown, "", spf_evidence(probe),
                  "", "pyspf DNS queries:", authorization.log)
    failing = [r for r in results if r.result != "pass"]
    if failing:
        return Evaluation.failed_(
            f"{domain}: expected SPF pass for every server IP; "
            + "; ".join(f"{r.ip} evaluates to {r.result} ({r.explanation})" for r in failing), full)
    return Evaluation.passed_(f"{domain}: SPF pass for {', '.join(r.ip for r in results)}", full)


# --- DMARC ------------------------------------------------------------------------------------

def dmarc_evidence(probe: DmarcProbe) -> str:
    """The TXT records at _dmarc and the RFC 7489 parse of each DMARC record."""
    parts = [probe.answer.line()]
    for check in probe.records:
        tags = ", ".join(f"{k}={v}" for k, v in check.tags)
        verdict = "valid (RFC 7489)" if not check.errors else "INVALID: " + "; ".join(check.errors)
        parsed = f"parse: {verdict}; p={check.policy} sp={check.subdomain_policy}"
        dests = "".join(
            f"\n  rua {d.uri}: " + ("internal" if not d.external else
                                    f"external, {'authorized' if d.authorized else 'NOT authorized'} "
                                    f"({d.authorization.line() if d.authorization else d.note})")
            for d in check.rua)
        warnings = "".join(f"\n  warning: {w}" for w in check.warnings)
        parts.append(f"\nDMARC record: {check.record}\n  tags: {tags}\n  {parsed}{dests}{warnings}")
    return "\n".join(parts)


def dmarc_problem(probe: DmarcProbe) -> str | None:
    """Why no DMARC policy applies to the domain (none, several, invalid), naming the record and the
    problem; None when exactly one valid record was found."""
    where = probe.answer.name
    if not probe.records:
        return f"there is no DMARC record at {where} ({probe.answer.status})"
    if len(probe.records) > 1:
        return f"{len(probe.records)} DMARC records at {where} (RFC 7489 §6.6.3: receivers apply no DMARC policy)"
    check = probe.records[0]
    if check.errors:
        return f"the DMARC record '{_short(check.record)}' is invalid: " + "; ".join(check.errors)
    return None


@evidence_named(DMARC_EVIDENCE)
def evaluate_dmarc_record(probe: DmarcProbe) -> Evaluation:
    """Exactly one valid DMARC record at ``_dmarc.<domain>`` (or the organizational domain)."""
    evidence = dmarc_evidence(probe)
    where = probe.answer.name
    if not probe.records:
        return Evaluation.failed_(f"{where}: expected one DMARC record, found none ({probe.answer.status})",
                                  evidence)
    if len(probe.records) > 1:
        shown = " | ".join(c.record for c in probe.records)
        return Evaluation.failed_(
            f"{where}: expected one DMARC record, found {len(probe.records)} (RFC 7489 §6.6.3: "
            f"no policy applies): {shown}", evidence)
    check = probe.records[0]
    if check.errors:
        return Evaluation.failed_(f"{where}: DMARC record invalid: '{_short(check.record)}': "
                                  + "; ".join(check.errors), evidence)
    notes = "".join(f" (note: {w})" for w in check.syntax.warnings)
    return Evaluation.passed_(f"{where}: one valid DMARC record: {check.record}{notes}", evidence)


def _dmarc_policy_problems(check: DmarcRecordCheck, policy: DnsPolicy) -> list[str]:
    """What in one record falls short of the policy (p, sp, pct), as written."""
    minimum = DMARC_RANK[policy.dmarc_min_policy]
    problems = []
    if check.policy is None:
        problems.append(f"p={check.tag('p')} (not none, quarantine or reject)" if check.tag("p") else "no p=")
    elif DMARC_RANK[check.policy] < minimum:
        problems.append(f"p={check.policy}")
    if check.subdomain_policy is None and check.tag("sp") is not None:
        problems.append(f"sp={check.tag('sp')} (not none, quarantine or reject)")
    elif DMARC_RANK.get(check.subdomain_policy or "", 0) < minimum and check.policy is not None:
        problems.append(f"sp={check.subdomain_policy}")
    pct = check.syntax.pct
    if pct is None:
        problems.append(f"pct={check.tag('pct')} (not 0-100 in ASCII digits)")
    elif pct < policy.dmarc_min_pct:
        problems.append(f"pct={check.tag('pct')}")
    return problems


@evidence_named(DMARC_EVIDENCE, "dns.dmarc_min_policy", "dns.dmarc_min_pct")
def evaluate_dmarc_policy(probe: DmarcProbe, policy: DnsPolicy) -> Evaluation:
    """One valid record whose ``p`` and ``sp`` reach the policy minimum and ``pct`` the policy's (100)."""
    evidence = dmarc_evidence(probe)
    expected = f"p and sp at least {policy.dmarc_min_policy}, pct={policy.dmarc_min_pct}"
    name = probe.answer.name
    if not probe.records:
        return Evaluation.failed_(f"{name}: expected {expected}; there is no DMARC record", evidence)
    problem = dmarc_problem(probe)
    if problem:
        published = "; ".join(f"'{_short(c.record)}': " + (", ".join(_dmarc_policy_problems(c, policy)) or
                                                          f"p={c.policy} sp={c.subdomain_policy}")
                              for c in probe.records)
        return Evaluation.failed_(f"{name}: expected {expected}; {problem}, so no DMARC policy is enforced "
                                  f"(as published: {published})", evidence)
    check = probe.records[0]
    problems = _dmarc_policy_problems(check, policy)
    if problems:
        return Evaluation.failed_(f"{name}: expected {expected}; '{check.record}': " + ", ".join(problems), evidence)
    return Evaluation.passed_(
        f"{name}: p={check.policy} sp={check.subdomain_policy} pct={check.tag('pct') or '100'} ({expected})",
        evidence)


def _reporting_problems(check: DmarcRecordCheck, dmarc_name: str) -> list[str]:
    problems = [] if check.rua else [f"'{_short(check.record)}' has no rua (no aggregate reports are sent)"]
    for dest in check.rua:
        if dest.external and not dest.authorized:
            problems.append(f"external rua {dest.address} is not authorized: no v=DMARC1 TXT at "
                            f"{dmarc_name.removeprefix('_dmarc.')}._report._dmarc.{dest.domain}"
                            + (f" ({dest.note})" if dest.note else ""))
    return problems


@evidence_named(DMARC_EVIDENCE)
def evaluate_dmarc_reporting(probe: DmarcProbe) -> Evaluation:
    """One valid record with ``rua``, every external destination authorizing the domain (RFC 7489 §7.1)."""
    evidence = dmarc_evidence(probe)
    name = probe.answer.name
    if not probe.records:
        return Evaluation.failed_(f"{name}: expected rua; there is no DMARC record", evidence)
    problems = [p for check in probe.records for p in _reporting_problems(check, name)]
    problem = dmarc_problem(probe)
    if problem:
        published = f" (as published: {'; '.join(problems)})" if problems else ""
        return Evaluation.failed_(f"{name}: {problem}, so no aggregate report is assured{published}", evidence)
    if problems:
        return Evaluation.failed_(f"{name}: " + "; ".join(problems), evidence)
    dests = ", ".join(f"{d.address} ({'external, authorized' if d.external else 'internal'})"
                      for d in probe.records[0].rua)
    return Evaluation.passed_(f"{name}: aggregate reports go to {dests}", evidence)


# --- DKIM -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DkimKey:
    """A parsed DKIM key record (RFC 6376 §3.6.1)."""

    record: str
    key_type: str
    bits: int | None
    revoked: bool = False
    error: str | None = None


def parse_dkim_record(record: str) -> DkimKey:
    """Parse tags and the public key; the key size comes from the key itself."""
    tags = {}
    for part in record.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            tags[name.strip().lower()] = "".join(value.split())
    key_type = tags.get("k", "rsa").lower()
    if "v" in tags and tags["v"] != "DKIM1":
        return DkimKey(record, key_type, None, error=f"v={tags['v']} (expected DKIM1)")
    if "p" not in tags:
        return DkimKey(record, key_type, None, error="no p= tag (not a DKIM key record)")
    if not tags["p"]:
        return DkimKey(record, key_type, None, revoked=True, error="p= is empty: the key is revoked")
    try:
        raw = base64.b64decode(tags["p"], validate=True)
    except (binascii.Error, ValueError):
        return DkimKey(record, key_type, None, error="p= is not valid base64")
    return _dkim_key(record, key_type, raw)


def _dkim_key(record: str, key_type: str, raw: bytes) -> DkimKey:
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    if key_type == "ed25519":
        if len(raw) != 32:
            return DkimKey(record, key_type, None, error=f"ed25519 key of {len(raw)} bytes (expected 32)")
        return DkimKey(record, key_type, 256)
    if key_type != "rsa":
        return DkimKey(record, key_type, None, error=f"unknown key type k={key_type}")
    try:
        key = load_der_public_key(raw)
    except (ValueError, TypeError) as exc:
        return DkimKey(record, key_type, None, error=f"p= is not an RSA public key ({exc})")
    if not isinstance(key, rsa.RSAPublicKey):
        return DkimKey(record, key_type, None, error=f"k=rsa but the key is {type(key).__name__}")
    return DkimKey(record, key_type, key.key_size)


@evidence_named("DKIM key record", "dns.dkim_min_rsa_bits")
def evaluate_dkim(selector: str, answer: Answer, policy: DnsPolicy) -> Evaluation:
    """One valid DKIM key at the selector; RSA keys at least the policy's size (RFC 8301: ≥ 1024)."""
    keys = [parse_dkim_record(r) for r in answer.records if "p=" in r.replace(" ", "")]
    evidence = _lines(answer.line(), *(
        f"  k={k.key_type} bits={k.bits or '?'}" + (f" error: {k.error}" if k.error else "") for k in keys))
    minimum = policy.dkim_min_rsa_bits
    if not keys:
        return Evaluation.failed_(
            f"{answer.name}: expected a DKIM key for selector {selector}, found none ({answer.status})", evidence)
    if len(keys) > 1:
        return Evaluation.failed_(f"{answer.name}: {len(keys)} DKIM key records (RFC 6376 §3.6.2.2: "
                                  "verifiers may use any, so results vary)", evidence)
    key = keys[0]
    if key.error:
        return Evaluation.failed_(f"{answer.name}: invalid DKIM key: {key.error}", evidence)
    if key.key_type == "rsa" and (key.bits or 0) < max(minimum, 1024):
        floor = "; RFC 8301 §3.2 forbids keys under 1024 bits" if (key.bits or 0) < 1024 else ""
        return Evaluation.failed_(
            f"{answer.name}: RSA key of {key.bits} bits, expected at least {minimum}{floor}", evidence)
    return Evaluation.passed_(f"{answer.name}: {key.key_type.upper()} key of {key.bits} bits "
                              f"(RSA minimum {minimum})", evidence)


# --- PTR --------------------------------------------------------------------------------------

@evidence_named("PTR and forward lookups")
def evaluate_ptr(probes: list[PtrProbe]) -> Evaluation:
    """Every server IP has a PTR whose name resolves back to that IP (FCrDNS)."""
    evidence = "\n".join(
        _lines(p.ptr.line(), *(f"  {name} -> {', '.join(addrs) or '(no address)'}" for name, addrs in p.forward))
        for p in probes)
    problems, confirmed = [], []
    for probe in probes:
        good = [name for name, addrs in probe.forward if probe.ip in addrs]
        if not probe.ptr.found:
            problems.append(f"{probe.ip} has no PTR ({probe.ptr.status})")
        elif not good:
            shown = "; ".join(f"{n} -> {', '.join(a) or 'nothing'}" for n, a in probe.forward)
            problems.append(f"{probe.ip} PTR {shown}: no name resolves back to {probe.ip}")
        else:
            confirmed.append(f"{probe.ip} <-> {good[0]}")
    if problems:
        return Evaluation.failed_("expected forward-confirmed reverse DNS; " + "; ".join(problems), evidence)
    return Evaluation.passed_("forward-confirmed reverse DNS: " + "; ".join(confirmed), evidence)


# --- DNS blocklists ---------------------------------------------------------------------------

def classify_dnsbl_answer(addresses: tuple[str, ...], zone: DnsblZone) -> tuple[str, str]:
    """("clean" | "listed" | "error" | "unknown", detail) for one A answer of a blocklist.

    The zone's ``errors`` networks (e.g. Spamhaus 127.255.255.0/24: query refused) and anything
    outside 127.0.0.0/8 (RFC 5782 §2.1: a hijacked or wildcard answer) are errors, never listings.
    """
    if not addresses:
        return "clean", "not listed"
    kinds = []
    for text in addresses:
        ip = ipaddress.ip_address(text)
        if any(ip in ipaddress.ip_network(n) for n in zone.errors):
            kinds.append(("error", f"{text} is an error code of {zone.zone} (query refused or failed)"))
        elif ip not in ipaddress.ip_network("127.0.0.0/8"):
            kinds.append(("error", f"{text} is outside 127.0.0.0/8 (RFC 5782 §2.1): not a blocklist answer"))
        elif any(ip in ipaddress.ip_network(n) for n in zone.listed):
            kinds.append(("listed", f"listed ({text})"))
        else:
            kinds.append(("unknown", f"{text} is not a return code {zone.zone} documents"))
    for kind in ("error", "listed", "unknown"):
        hits = [d for k, d in kinds if k == kind]
        if hits:
            return kind, "; ".join(hits)
    return "clean", "not listed"  # pragma: no cover - every address gets a kind above


def dnsbl_zone_problem(probe: DnsblProbe, zone: DnsblZone) -> str | None:
    """Why this zone's answers cannot be trusted (RFC 5782 §5 test entries, error codes), or None."""
    kind, detail = classify_dnsbl_answer(probe.test_listed.a.records, zone)
    if kind == "error":
        return f"{zone.zone}: test entry 127.0.0.2 answered {detail}"
    if kind == "clean":
        return (f"{zone.zone}: RFC 5782 test entry 127.0.0.2 is not listed ({probe.test_listed.a.status}): "
                "the zone does not work as a blocklist here")
    kind, detail = classify_dnsbl_answer(probe.test_clean.a.records, zone)
    if kind != "clean":
        return f"{zone.zone}: RFC 5782 test entry 127.0.0.1 must not be listed but answered {detail}"
    for lookup in probe.lookups:
        kind, detail = classify_dnsbl_answer(lookup.a.records, zone)
        if kind == "error":
            return f"{zone.zone}: lookup of {lookup.ip} answered {detail}"
    return None


def _dnsbl_line(lookup: DnsblLookup) -> str:
    txt = f"  TXT: {' | '.join(lookup.txt.records)}" if lookup.txt and lookup.txt.records else ""
    return f"{lookup.ip}: {lookup.a.line()}{txt}"


@evidence_named("blocklist answers")
def evaluate_dnsbl(probe: DnsblProbe, zone: DnsblZone) -> Evaluation:
    """No server IP is listed in this zone (its test entries already checked by the fixture)."""
    evidence = _lines(f"zone {zone.zone}" + (f" ({zone.note})" if zone.note else ""),
                      "test entries:", _dnsbl_line(probe.test_listed), _dnsbl_line(probe.test_clean),
                      "server addresses:", *(_dnsbl_line(lookup) for lookup in probe.lookups))
    listed, unknown, clean = [], [], []
    for lookup in probe.lookups:
        kind, detail = classify_dnsbl_answer(lookup.a.records, zone)
        reason = f" — {' | '.join(lookup.txt.records)}" if lookup.txt and lookup.txt.records else ""
        {"listed": listed, "unknown": unknown}.get(kind, clean).append(f"{lookup.ip} {detail}{reason}")
    if listed:
        return Evaluation.failed_(f"{zone.zone}: expected no listing; " + "; ".join(listed), evidence)
    if unknown:
        return Evaluation.inconclusive_(f"{zone.zone}: " + "; ".join(unknown), evidence)
    return Evaluation.passed_(f"{zone.zone}: {', '.join(lk.ip for lk in probe.lookups)} not listed", evidence)


# --- MTA-STS and TLS-RPT ----------------------------------------------------------------------

def mx_matches_pattern(host: str, pattern: str) -> bool:
    """RFC 8461 §4.1: exact match, or ``*.`` matching exactly one leftmost label."""
    host, pattern = host.lower().rstrip("."), pattern.lower().rstrip(".")
    if pattern.startswith("*."):
        label, _, rest = host.partition(".")
        return bool(label) and rest == pattern[2:]
    return host == pattern


def _mta_sts_evidence(probe: MtaStsProbe) -> str:
    fetch = probe.fetch
    fetched = ""
    if fetch:
        fetched = (f"GET {fetch.url} ({fetch.ip}): " +
                   (f"error: {fetch.error}" if fetch.error else
                    f"HTTP {fetch.status}, Content-Type {fetch.content_type!r}\n{fetch.body}"))
    return _lines(probe.txt.line(), fetched, f"MX hosts: {', '.join(probe.mx_hosts) or '(none)'}")


def _mta_sts_record_problem(probe: MtaStsProbe) -> str | None:
    records = [r for r in probe.txt.records if r.startswith("v=STSv1")]  # RFC 8461 §3.1: others discarded
    if not records:
        return f"no v=STSv1 TXT record at _mta-sts.{probe.domain} ({probe.txt.status})"
    if len(records) > 1:
        return f"{len(records)} v=STSv1 records at _mta-sts.{probe.domain} (RFC 8461 §3.1: none applies)"
    errors = mta_sts_record_errors(records[0])
    if errors:
        return f"_mta-sts.{probe.domain} record invalid (RFC 8461 §3.1): " + "; ".join(errors)
    return None


def _mta_sts_policy(probe: MtaStsProbe) -> tuple[MtaStsPolicy | None, str | None]:
    fetch = probe.fetch
    if fetch is None or fetch.error:
        return None, f"policy not served: {fetch.error if fetch else 'not fetched'}"
    if fetch.status != 200:
        return None, f"{fetch.url} answered HTTP {fetch.status} (RFC 8461 §3.3: 200 expected)"
    if not fetch.content_type.lower().startswith("text/plain"):
        return None, f"{fetch.url} has Content-Type {fetch.content_type!r} (RFC 8461 §3.2: text/plain)"
    if len(fetch.body.encode("utf-8", "replace")) > MAX_POLICY_BYTES:
        return None, f"{fetch.url} is larger than {MAX_POLICY_BYTES // 1024} KiB (RFC 8461 §3.3)"
    parsed = parse_mta_sts_policy(fetch.body)
    if parsed.errors:
        return None, "policy invalid (RFC 8461 §3.2): " + "; ".join(parsed.errors)
    return parsed, None


@evidence_named("MTA-STS record and policy", "dns.mta_sts_mode")
def evaluate_mta_sts(probe: MtaStsProbe, policy: DnsPolicy) -> Evaluation:
    """TXT present, policy served over validated HTTPS, mode as the policy requires, every MX covered."""
    evidence = _mta_sts_evidence(probe)
    problem = _mta_sts_record_problem(probe)
    if problem:
        return Evaluation.failed_(f"{probe.domain}: {problem}", evidence)
    parsed, problem = _mta_sts_policy(probe)
    if problem or parsed is None:
        return Evaluation.failed_(f"{probe.domain}: {problem}", evidence)
    problems = []
    if parsed.mode != policy.mta_sts_mode:
        problems.append(f"mode is {parsed.mode}, expected {policy.mta_sts_mode}")
    uncovered = [h for h in probe.mx_hosts if not any(mx_matches_pattern(h, p) for p in parsed.mx)]
    if uncovered:
        problems.append(f"MX {', '.join(uncovered)} not covered by the policy's mx: {', '.join(parsed.mx)}")
    if problems:
        return Evaluation.failed_(f"{probe.domain}: MTA-STS " + "; ".join(problems), evidence)
    return Evaluation.passed_(f"{probe.domain}: MTA-STS mode {parsed.mode}, mx {', '.join(parsed.mx)} "
                              f"covers {', '.join(probe.mx_hosts)}", evidence)


@evidence_named("TLS-RPT record")
def evaluate_tlsrpt(domain: str, answer: Answer) -> Evaluation:
    """Exactly one valid ``v=TLSRPTv1`` record at ``_smtp._tls.<domain>`` (RFC 8460 §3)."""
    evidence = answer.line()
    records = [r for r in answer.records if r.startswith("v=TLSRPTv1")]
    if not records:
        return Evaluation.failed_(f"{answer.name}: expected a v=TLSRPTv1 record, found none ({answer.status})",
                                  evidence)
    if len(records) > 1:
        return Evaluation.failed_(f"{answer.name}: {len(records)} TLS-RPT records (RFC 8460 §3: one)", evidence)
    rua, errors = tlsrpt_record(records[0])
    if errors:
        return Evaluation.failed_(f"{answer.name}: TLS-RPT record invalid (RFC 8460 §3): " + "; ".join(errors),
                                  evidence)
    return Evaluation.passed_(f"{answer.name}: TLS-RPT reports go to {', '.join(rua)}", evidence)


# --- DANE -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Tlsa:
    """A TLSA record (RFC 6698 §2.1)."""

    usage: int
    selector: int
    mtype: int
    data: bytes

    @classmethod
    def parse(cls, text: str) -> Tlsa:
        """From presentation format: ``3 1 1 ab12...`` (hex may be split by spaces)."""
        usage, selector, mtype, *hexdata = text.split()
        return cls(int(usage), int(selector), int(mtype), bytes.fromhex("".join(hexdata)))


def spki_der(cert_der: bytes) -> bytes:
    """The SubjectPublicKeyInfo of a DER certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    cert = x509.load_der_x509_certificate(cert_der)
    return cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def tlsa_association(cert_der: bytes, selector: int, mtype: int) -> bytes | None:
    """The data a TLSA record with this selector/matching type would hold for this certificate."""
    content = cert_der if selector == 0 else spki_der(cert_der) if selector == 1 else None
    if content is None:
        return None
    return {0: lambda c: c, 1: lambda c: hashlib.sha256(c).digest(),
            2: lambda c: hashlib.sha512(c).digest()}.get(mtype, lambda c: None)(content)


def tlsa_matches(record: Tlsa, chain: tuple[bytes, ...]) -> bool:
    """RFC 7672 §3.1: DANE-EE(3) matches the leaf; DANE-TA(2) any issuer in the chain; 0/1 unusable."""
    if not chain or record.usage not in (2, 3):
        return False
    candidates = chain[:1] if record.usage == 3 else chain[1:]
    return any(tlsa_association(c, record.selector, record.mtype) == record.data for c in candidates)


@evidence_named("TLSA records and served certificate")
def evaluate_dane(probe: DaneProbe) -> Evaluation:
    """Where TLSA records exist for the MX, they are DNSSEC-secure and one matches the served chain."""
    chain = probe.chain.certificates if probe.chain else ()
    presented = f"presented leaf: SPKI SHA-256 {hashlib.sha256(spki_der(chain[0])).hexdigest()}" if chain else ""
    evidence = _lines(probe.mx.line(), *(h.tlsa.line() for h in probe.hosts),
                      f"certificate chain via STARTTLS at {probe.chain.where}: {len(chain)} certificates"
                      if probe.chain else "", presented)
    with_tlsa = [h for h in probe.hosts if h.tlsa.found]
    if not with_tlsa:
        names = ", ".join(f"_25._tcp.{h.host}" for h in probe.hosts)
        return Evaluation.skipped_(f"no TLSA records at {names}: DANE is not deployed (not applicable)", evidence)
    unvalidated = [a for a in (probe.mx, *(h.tlsa for h in with_tlsa)) if a.signed and not a.secure]
    if unvalidated:
        return Evaluation.inconclusive_(
            f"{', '.join(f'{a.name} {a.rdtype}' for a in unvalidated)}: signed, but the resolver did not "
            "validate it (AD clear): point --dns-server at a DNSSEC-validating resolver", evidence)
    problems = []
    if not probe.mx.secure:
        problems.append(f"the MX RRset of {probe.domain} is not DNSSEC-signed (RFC 7672 §2.2.1: TLSA unusable)")
    for host in with_tlsa:
        problems += _dane_host_problems(host.host, host.tlsa, chain)
    if problems:
        return Evaluation.failed_("; ".join(problems), evidence)
    return Evaluation.passed_(f"TLSA for {', '.join(h.host for h in with_tlsa)} DNSSEC-validated and matching "
                              "the certificate served on port 25", evidence)


def _dane_host_problems(host: str, tlsa: Answer, chain: tuple[bytes, ...]) -> list[str]:
    problems = []
    if not tlsa.secure:
        problems.append(f"_25._tcp.{host} TLSA is not DNSSEC-signed: unusable per RFC 7672 §2.2")
    records = [Tlsa.parse(r) for r in tlsa.records]
    if not any(tlsa_matches(r, chain) for r in records):
        shown = " | ".join(tlsa.records)
        problems.append(f"no usable TLSA record of _25._tcp.{host} ({shown}) matches the certificate the "
                        "server presents")
    return problems
