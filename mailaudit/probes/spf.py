"""SPF probes: each SPF record of a domain parsed (RFC 7208 grammar, :mod:`mailaudit.dns_records`)
and walked for its DNS lookups within the RFC 7208 §4.6.4 limits and a hard cap on queries; and
pyspf's check_host() for the server's IPs, its queries through the same client.

Loops are detected and named; a record with a syntax error is not walked (permerror before any
lookup); past the limits nothing more is asked, so a hostile include fan-out costs a few queries.
Judging is in :mod:`mailaudit.evaluate.dns`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import dns.rcode

from mailaudit.dns_records import SpfDirective, SpfSyntax, is_spf, parse_spf
from mailaudit.errors import BudgetExceeded, CannotJudge, DnsError
from mailaudit.probes.dns import NOT_FOUND, Answer, DnsClient, is_dns_name

# --- SPF --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SpfLimits:
    """How far one SPF walk may go: the RFC 7208 §4.6.4 limits (policy ``dns.spf_max_lookups``,
    ``dns.spf_max_void_lookups``) and a hard cap on the queries of one walk (``dns.spf_max_queries``)."""

    terms: int = 10
    voids: int = 2
    queries: int = 250


@dataclass(frozen=True)
class SpfTerm:
    """One term of an SPF record as walked, with the DNS lookups it costs (RFC 7208 §4.6.4)."""

    text: str
    lookups: int = 0
    void: bool = False
    detail: str = ""
    child: SpfNode | None = None


@dataclass(frozen=True)
class SpfNode:
    """An SPF record and its terms; includes and redirects are child nodes."""

    domain: str
    record: str | None
    terms: tuple[SpfTerm, ...] = ()
    problem: str = ""
    all_term: str | None = None  # its own all, else that of its redirect target (RFC 7208 §6.1)

    def lookups(self) -> int:
        """DNS-querying terms, counted recursively."""
        return sum(t.lookups + (t.child.lookups() if t.child else 0) for t in self.terms)

    def voids(self) -> int:
        """Lookups that returned NXDOMAIN or no records, counted recursively."""
        return sum(int(t.void) + (t.child.voids() if t.child else 0) for t in self.terms)

    def render(self, indent: int = 0) -> str:
        """The include tree, one term per line, with each lookup's cost."""
        pad = "  " * indent
        head = f"{pad}{self.domain}: {self.record or '(no SPF record)'}"
        head += f"  [{self.lookups()} lookups, {self.voids()} void]"
        if self.problem:
            head += f"  !! {self.problem}"
        lines = [head]
        for term in self.terms:
            if not term.lookups and not term.detail:
                continue
            cost = f"+{term.lookups}" + (" void" if term.void else "")
            lines.append(f"{pad}  - {term.text} ({cost}) {term.detail}".rstrip())
            if term.child:
                lines.append(term.child.render(indent + 2))
        return "\n".join(lines)


@dataclass(frozen=True)
class SpfWalk:
    """The outcome of walking one SPF record: the tree and what the walk found on the way."""

    tree: SpfNode
    terms: int  # DNS-querying terms met, including those counted but not looked up after a stop
    voids: int
    queries: int  # DNS queries the walk made
    stop: str = ""  # why the walk stopped looking up ("" when it did not)
    stop_kind: str = ""  # "terms" or "voids" (RFC 7208 §4.6.4 permerror), "queries" (the suite's cap)
    partial: bool = False  # an include/redirect was not followed after the stop: counts are lower bounds
    loops: tuple[str, ...] = ()  # "a.test -> b.test -> a.test"
    permerrors: tuple[str, ...] = ()  # problems below the top record (include without SPF, syntax...)
    unresolved: tuple[str, ...] = ()  # includes/redirects with macros: their cost depends on the message


class _Walker:
    """The mutable state of one walk: counts, limits and what was found."""

    def __init__(self, client: DnsClient, limits: SpfLimits, since: int) -> None:
        self.client, self.limits, self.since = client, limits, since
        self.started = client.queries
        self.terms = self.voids = 0
        self.stop = self.stop_kind = ""
        self.partial = False
        self.loops: list[str] = []
        self.permerrors: list[str] = []
        self.unresolved: list[str] = []

    def halt(self, kind: str, why: str) -> None:
        """Stop looking anything up from here on."""
        self.stop_kind, self.stop = kind, why

    def room_for(self, queries: int, text: str) -> bool:
        """True when ``queries`` more stay within the hard cap; else the walk stops there."""
        if self.client.queries - self.since + queries <= self.limits.queries:
            return True
        self.halt("queries", f"the cap of {self.limits.queries} DNS queries (policy dns.spf_max_queries) "
                             f"was reached at {text}")
        return False

    def void(self, text: str) -> None:
        """Count a void lookup; past the limit the walk stops (RFC 7208 §4.6.4: permerror)."""
        self.voids += 1
        if self.voids > self.limits.voids:
            self.halt("voids", f"{text} is void lookup {self.voids}, over the limit of {self.limits.voids}")

    def result(self, tree: SpfNode) -> SpfWalk:
        return SpfWalk(tree, self.terms, self.voids, self.client.queries - self.started, self.stop, self.stop_kind,
                       self.partial, tuple(self.loops), tuple(self.permerrors), tuple(self.unresolved))


@dataclass(frozen=True)
class SpfRecordCheck:
    """One published SPF record: its parse (RFC 7208 grammar) and the walk of its lookups."""

    record: str
    syntax: SpfSyntax
    walk: SpfWalk

    @property
    def tree(self) -> SpfNode:
        """The include tree."""
        return self.walk.tree

    @property
    def lookups(self) -> int:
        """Recursive DNS-querying terms."""
        return self.walk.terms

    @property
    def voids(self) -> int:
        """Recursive void lookups."""
        return self.walk.voids

    @property
    def all_term(self) -> str | None:
        """The effective all: the record's own, else its redirect target's (RFC 7208 §6.1)."""
        return self.walk.tree.all_term

    @property
    def problems(self) -> tuple[str, ...]:
        """Why check_host() would return permerror for this record whatever the IP (syntax errors,
        loops, broken includes); empty when none was found. Lookup limits are not in here."""
        loops = tuple(f"include loop {loop} (RFC 7208 §4.6.4: permerror)" for loop in self.walk.loops)
        return tuple(f"syntax error: {e}" for e in self.syntax.errors) + loops + self.walk.permerrors


@dataclass(frozen=True)
class SpfEvaluation:
    """pyspf's verdict for one client IP (RFC 7208 §2.6)."""

    ip: str
    result: str
    explanation: str
    lookups: int
    void_lookups: int


@dataclass(frozen=True)
class SpfAuthorization:
    """pyspf's results for every sending IP of the server, or why pyspf was not run."""

    domain: str
    ips: tuple[str, ...]
    results: tuple[SpfEvaluation, ...] = ()
    not_run: str = ""  # why pyspf was not run (the domain's SPF is missing or invalid)
    log: str = ""


@dataclass(frozen=True)
class SpfProbe:
    """Every TXT record at the domain, the SPF ones parsed and walked, and the log of queries made."""

    domain: str
    txt: Answer
    records: tuple[SpfRecordCheck, ...]
    log: str = ""


def probe_spf(client: DnsClient, domain: str, limits: SpfLimits = SpfLimits()) -> SpfProbe:
    """The TXT records of ``domain``; each SPF record parsed and walked. All walks of the domain
    share the hard cap on queries."""
    txt = client.query(domain, "TXT")
    since = client.queries
    checks = tuple(check_spf_record(client, domain, r, limits, since) for r in sorted(txt.records) if is_spf(r))
    return SpfProbe(domain, txt, checks, client.evidence())


def check_spf_record(client: DnsClient, domain: str, record: str, limits: SpfLimits = SpfLimits(),
                     since: int | None = None) -> SpfRecordCheck:
    """Parse one SPF record and walk its lookups."""
    return SpfRecordCheck(record, parse_spf(record), walk_spf(client, domain, record, limits, since))


def walk_spf(client: DnsClient, domain: str, record: str, limits: SpfLimits = SpfLimits(),
             since: int | None = None) -> SpfWalk:
    """Follow the DNS-querying terms of ``record`` depth-first in evaluation order (mechanisms, then
    redirect), as check_host() would for an IP no mechanism matches, until a limit stops it.

    Past the RFC's limits nothing more is looked up; terms in records already read are still
    counted, so the evidence shows how far over the limit the record is. A record with a syntax
    error is not walked (RFC 7208 §4.6: permerror before any lookup).
    """
    walker = _Walker(client, limits, client.queries if since is None else since)
    tree = _walk_record(walker, domain.lower().rstrip("."), record, (domain.lower().rstrip("."),))
    return walker.result(tree)


def _walk_record(walker: _Walker, domain: str, record: str, chain: tuple[str, ...]) -> SpfNode:
    syntax = parse_spf(record)
    if not syntax.valid:
        if len(chain) > 1:
            walker.permerrors.append(f"the SPF record of {domain} has a syntax error: {syntax.errors[0]}")
        return SpfNode(domain, record, problem="syntax error: " + "; ".join(syntax.errors))
    terms = [_walk_term(walker, domain, d, chain) if d.costs_lookup else SpfTerm(d.text)
             for d in syntax.directives if not d.modifier]
    all_term = syntax.all_term
    redirect = next((d for d in syntax.directives if d.modifier and d.name == "redirect"), None)
    if redirect is not None and all_term is None:
        term = _walk_term(walker, domain, redirect, chain)
        terms.append(term)
        all_term = term.child.all_term if term.child else None
    elif redirect is not None:
        terms.append(SpfTerm(redirect.text, detail="(ignored: the record has an all, RFC 7208 §6.1)"))
    return SpfNode(domain, record, tuple(terms), all_term=all_term)


def _walk_term(walker: _Walker, domain: str, directive: SpfDirective, chain: tuple[str, ...]) -> SpfTerm:
    walker.terms += 1
    if not walker.stop and walker.terms > walker.limits.terms:
        walker.halt("terms", f"{directive.text} is DNS-querying term {walker.terms}, over the limit of "
                             f"{walker.limits.terms}")
    if walker.stop:
        walker.partial |= directive.name in ("include", "redirect")
        return SpfTerm(directive.text, 1, detail=f"(not looked up: {walker.stop_kind} limit reached)")
    if directive.has_macro:
        if directive.name in ("include", "redirect"):
            walker.unresolved.append(directive.text)
        return SpfTerm(directive.text, 1, detail="(macro: expanded per message, not resolved)")
    if directive.name == "ptr":
        return SpfTerm(directive.text, 1, detail="(depends on the client IP; RFC 7208 §5.5: do not use)")
    target = (directive.argument or domain).rstrip(".").lower()
    if not is_dns_name(target):
        walker.permerrors.append(f"{directive.text}: {target[:80]!r} is not a valid domain name")
        return SpfTerm(directive.text, 1, detail=f"-> {target[:80]!r} is not a valid domain name (permerror)")
    if not walker.room_for(2 if directive.name == "a" else 1, directive.text):
        walker.partial = True
        return SpfTerm(directive.text, 1, detail="(not looked up: query cap reached)")
    if directive.name in ("include", "redirect"):
        return _spf_include(walker, directive, target, chain)
    if directive.name == "mx":
        return _spf_mx(walker, directive.text, target)
    rdtypes = ("A",) if directive.name == "exists" else ("A", "AAAA")
    found = [r for t in rdtypes for r in walker.client.query(target, t).records]
    if not found:
        walker.void(directive.text)
    detail = f"-> {', '.join(found)}" if found else f"-> {target} has no address (void)"
    return SpfTerm(directive.text, 1, void=not found, detail=detail)


def _spf_mx(walker: _Walker, text: str, target: str) -> SpfTerm:
    answer = walker.client.query(target, "MX")
    if not answer.found:
        walker.void(text)
        return SpfTerm(text, 1, void=True, detail=f"-> {target} has no MX (void)")
    names = [r.split(" ", 1)[1].rstrip(".") for r in answer.records]
    detail = f"-> {', '.join(names[:12])}" + (" …" if len(names) > 12 else "")
    if len(names) > 10:
        walker.permerrors.append(f"{text}: {target} has {len(names)} MX names, more than 10 (RFC 7208 §4.6.4)")
        detail += " (more than 10 MX names: permerror, RFC 7208 §4.6.4)"
    return SpfTerm(text, 1, detail=detail)


def _spf_include(walker: _Walker, directive: SpfDirective, target: str, chain: tuple[str, ...]) -> SpfTerm:
    text, kind = directive.text, directive.name
    if target in chain:
        walker.loops.append(" -> ".join((*chain, target)))
        return SpfTerm(text, 1, detail=f"-> loop back to {target} (permerror)",
                       child=SpfNode(target, None, problem="include/redirect loop"))
    answer = walker.client.query(target, "TXT")
    spf = [r for r in answer.records if is_spf(r)]
    if not spf:
        void = answer.status in NOT_FOUND
        if void:
            walker.void(text)
        walker.permerrors.append(f"{kind} {target}: no SPF record there ({answer.status}; RFC 7208 §5.2/§6.1)")
        return SpfTerm(text, 1, void=void, detail=f"-> {target}: no SPF record ({answer.status}; permerror)",
                       child=SpfNode(target, None, problem="no SPF record"))
    if len(spf) > 1:
        walker.permerrors.append(f"{kind} {target}: {len(spf)} SPF records there (RFC 7208 §4.5)")
        return SpfTerm(text, 1, detail=f"-> {target}: {len(spf)} SPF records (permerror)",
                       child=SpfNode(target, None, problem=f"{len(spf)} SPF records (permerror)"))
    child = _walk_record(walker, target, spf[0], (*chain, target))
    return SpfTerm(text, 1, detail=f"-> {target}", child=child)


# --- SPF evaluation with pyspf through our resolver -------------------------------------------

def evaluate_spf_ip(client: DnsClient, domain: str, ip: str, helo: str, max_queries: int = 250) -> SpfEvaluation:
    """Run pyspf (a full RFC 7208 evaluator) for ``ip`` sending as postmaster@``domain``, its
    queries through our client (deadline, named errors) and capped at ``max_queries``."""
    import spf as pyspf

    with _pyspf_through(client, max_queries):
        query = pyspf.query(i=ip, s=f"postmaster@{domain}", h=helo, timeout=client.settings.lifetime_s)
        try:
            result, _code, explanation = query.check()
        except ValueError as exc:  # pyspf reading a record it does not expect (hostile input)
            raise CannotJudge(f"SPF evaluation of {domain} for {ip}: pyspf could not read the records "
                              f"({type(exc).__name__}: {str(exc)[:120]})", evidence=client.evidence()) from None
    if result == "temperror":
        raise DnsError(f"SPF evaluation of {domain} for {ip}: temperror ({explanation})", evidence=client.evidence())
    return SpfEvaluation(ip, result, str(explanation), query.lookups, query.void_lookups)


@contextmanager
def _pyspf_through(client: DnsClient, max_queries: int) -> Iterator[None]:
    """pyspf looks names up through a module function; point it at our client for the call."""
    import spf as pyspf

    start = client.queries

    def lookup(name: str, qtype: str, strict: bool = True, timeout: float = 30) -> list:
        if client.queries - start >= max_queries:
            raise BudgetExceeded(f"SPF evaluation: the cap of {max_queries} DNS queries (policy "
                                 "dns.spf_max_queries) was reached", evidence=client.evidence())
        response, rrset = client.message(name, qtype)
        values = [_pyspf_value(qtype, rdata) for rdata in rrset or ()]
        status = "NXDOMAIN" if response.rcode() == dns.rcode.NXDOMAIN else f"{len(values)} records"
        client.log.append(f"{name} {qtype} -> {status} (pyspf)")
        return [((name, qtype), v) for v in values]

    saved = pyspf.DNSLookup
    pyspf.DNSLookup = lookup
    try:
        yield
    finally:
        pyspf.DNSLookup = saved


def _pyspf_value(qtype: str, rdata: object) -> object:
    """The value shapes pyspf's own dnspython adapter returns."""
    if qtype in ("A", "AAAA"):
        return rdata.address
    if qtype == "MX":
        return (rdata.preference, rdata.exchange)
    if qtype == "PTR":
        return rdata.target.to_text(True)
    return rdata.strings
