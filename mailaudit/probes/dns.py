"""DNS probes: every query of the DNS requirements goes through one resolver (``--dns-server``).

NXDOMAIN and NODATA are answers (an :class:`Answer` with no records); SERVFAIL, REFUSED and
timeouts raise :class:`mailaudit.errors.DnsError` with one line naming the query and the resolver.
The probes only collect: SPF include trees with their lookup counts, DMARC/DKIM/TLS-RPT/MTA-STS
records, PTR and blocklist answers, TLSA records with their DNSSEC status and the certificate the
server presents. Judging is in :mod:`mailaudit.evaluate.dns`.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import dns.exception
import dns.flags
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver
import dns.reversename

from mailaudit.errors import ConnectError, DnsError, ProtocolError
from mailaudit.probes.relay import Channel, SessionSettings, open_session
from mailaudit.resolver import DnsServer, make_resolver

MAX_SPF_DEPTH = 10  # include/redirect nesting followed before giving up (loops are caught earlier)
MAX_POLICY_BYTES = 64 * 1024  # RFC 8461 §3.3: senders may refuse larger MTA-STS policies
NOT_FOUND = ("NXDOMAIN", "NODATA")


# --- the resolver -----------------------------------------------------------------------------

@dataclass(frozen=True)
class DnsSettings:
    """Where and how patiently to ask: the resolver (None = the system's), per-try timeout, retries."""

    server: DnsServer | None
    timeout_s: float
    retries: int

    @property
    def lifetime_s(self) -> float:
        """The whole budget of one query: every try together."""
        return self.timeout_s * (self.retries + 1)

    @property
    def where(self) -> str:
        """The resolver, for messages."""
        return str(self.server) if self.server else "the system resolver"


def make_dns_resolver(settings: DnsSettings, dnssec: bool = False) -> dns.resolver.Resolver:
    """The one resolver factory of the DNS probes (built on :func:`mailaudit.resolver.make_resolver`).

    With ``dnssec`` the queries carry the AD and DO bits, so a validating resolver reports in the
    AD bit whether it validated the answer (RFC 6840 §5.7).
    """
    resolver = make_resolver(settings.server, settings.timeout_s)
    resolver.timeout = settings.timeout_s
    resolver.lifetime = settings.lifetime_s
    resolver.cache = None
    if dnssec:
        resolver.use_edns(0, dns.flags.DO, 1232)
        resolver.flags = dns.flags.RD | dns.flags.AD
    return resolver


@dataclass(frozen=True)
class Answer:
    """One query's outcome: NOERROR with records, or NXDOMAIN / NODATA with none."""

    name: str
    rdtype: str
    status: str
    records: tuple[str, ...] = ()
    secure: bool = False  # the resolver set AD: the answer was DNSSEC-validated
    signed: bool = False  # RRSIGs came with it (asked with DO): the zone is signed, validated or not

    @property
    def found(self) -> bool:
        """True when the name has records of this type."""
        return bool(self.records)

    def line(self) -> str:
        """``name TYPE -> status: records`` for evidence."""
        shown = " | ".join(self.records) if self.records else "(no records)"
        secure = " [AD: DNSSEC-validated]" if self.secure else " [signed, not validated]" if self.signed else ""
        return f"{self.name} {self.rdtype} -> {self.status}{secure}: {shown}"


def translate_dns_exception(exc: Exception, name: str, rdtype: str, settings: DnsSettings) -> DnsError:
    """A resolver failure as the suite's DnsError: one line naming the query and the resolver."""
    where = f"{name} {rdtype} via {settings.where}"
    if isinstance(exc, dns.exception.Timeout):
        tries = settings.retries + 1
        return DnsError(f"{where}: no answer within {settings.lifetime_s:g} s ({tries} tries)")
    if isinstance(exc, dns.resolver.NoNameservers):
        rcodes = sorted({str(e[3]) for e in exc.kwargs.get("errors", []) if len(e) > 3})
        return DnsError(f"{where}: {'/'.join(rcodes) or 'SERVFAIL'} (the resolver could not answer)")
    return DnsError(f"{where}: {type(exc).__name__}: {exc}")


class DnsClient:
    """Queries through the configured resolver; keeps a log of every answer for the evidence."""

    def __init__(self, settings: DnsSettings) -> None:
        self.settings = settings
        self.resolver = make_dns_resolver(settings)
        self._secure_resolver = make_dns_resolver(settings, dnssec=True)
        self.log: list[str] = []

    def query(self, name: str, rdtype: str, dnssec: bool = False) -> Answer:
        """Ask once (with the policy's retries); NXDOMAIN/NODATA are answers, failures DnsError."""
        resolver = self._secure_resolver if dnssec else self.resolver
        try:
            result = resolver.resolve(name, rdtype, raise_on_no_answer=False, search=False)
        except dns.resolver.NXDOMAIN:
            answer = Answer(name, rdtype, "NXDOMAIN")
        except dns.exception.DNSException as exc:
            raise translate_dns_exception(exc, name, rdtype, self.settings) from None
        else:
            secure = bool(result.response.flags & dns.flags.AD)
            signed = any(rrset.rdtype == dns.rdatatype.RRSIG for rrset in result.response.answer)
            records = tuple(_rdata_text(rdata) for rdata in result.rrset or ())
            answer = Answer(name, rdtype, "NOERROR" if records else "NODATA", records, secure, signed)
        self.log.append(answer.line())
        return answer

    def addresses(self, name: str) -> tuple[str, ...]:
        """The A and AAAA addresses of a name (empty when it has none)."""
        return self.query(name, "A").records + self.query(name, "AAAA").records

    def evidence(self) -> str:
        """Every query asked so far, one per line."""
        return "\n".join(self.log)

    def nameservers(self) -> list[dns.nameserver.Nameserver] | None:
        """The resolver as a nameserver list, for library code that builds its own resolver
        (checkdmarc does for SPF ``exp=``); None means the system's, as for our own queries."""
        server = self.settings.server
        return [dns.nameserver.Do53Nameserver(server.ip, server.port)] if server else None


def _rdata_text(rdata: object) -> str:
    """TXT as its strings joined (RFC 7208 §3.3), everything else in presentation format."""
    strings = getattr(rdata, "strings", None)
    if strings is not None:
        return b"".join(strings).decode("utf-8", "replace")
    return rdata.to_text()


# --- MX ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MxHost:
    """One MX target: its preference, name and addresses (and whether the name is an alias)."""

    preference: int
    name: str
    addresses: tuple[str, ...]
    cname: str | None = None


@dataclass(frozen=True)
class MxProbe:
    """The MX records of a domain and the addresses of each host."""

    domain: str
    answer: Answer
    hosts: tuple[MxHost, ...]

    @property
    def null_mx(self) -> bool:
        """RFC 7505: a single ``MX 0 .`` says the domain accepts no mail."""
        return len(self.hosts) == 1 and self.hosts[0].name in ("", ".")


def probe_mx(client: DnsClient, domain: str, dnssec: bool = False) -> MxProbe:
    """MX records of ``domain`` and the addresses of every host they name."""
    answer = client.query(domain, "MX", dnssec=dnssec)
    hosts = []
    for record in answer.records:
        preference, _, target = record.partition(" ")
        name = target.rstrip(".")
        if not name:
            hosts.append(MxHost(int(preference), ".", ()))
            continue
        cname = client.query(name, "CNAME")
        hosts.append(MxHost(int(preference), name.lower(), client.addresses(name),
                            cname.records[0].rstrip(".") if cname.found else None))
    return MxProbe(domain, answer, tuple(sorted(hosts, key=lambda h: (h.preference, h.name))))


# --- SPF --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SpfTerm:
    """One term of an SPF record with the DNS lookups it costs (RFC 7208 §4.6.4)."""

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
            if not term.lookups:
                continue
            cost = f"+{term.lookups}" + (" void" if term.void else "")
            lines.append(f"{pad}  - {term.text} ({cost}) {term.detail}".rstrip())
            if term.child:
                lines.append(term.child.render(indent + 2))
        return "\n".join(lines)


@dataclass(frozen=True)
class SpfRecordCheck:
    """One published SPF record: checkdmarc's parse of it and our recursive lookup tree."""

    record: str
    error: str | None  # checkdmarc's verdict: syntax error, include loop...
    error_kind: str | None
    warnings: tuple[str, ...]
    tree: SpfNode
    all_term: str | None  # "-all", "~all", "?all", "+all"; None when the record has no all
    redirect: str | None

    @property
    def lookups(self) -> int:
        """Recursive DNS-querying terms."""
        return self.tree.lookups()

    @property
    def voids(self) -> int:
        """Recursive void lookups."""
        return self.tree.voids()


@dataclass(frozen=True)
class SpfEvaluation:
    """pyspf's verdict for one client IP (RFC 7208 §2.6)."""

    ip: str
    result: str
    explanation: str
    lookups: int
    void_lookups: int


@dataclass(frozen=True)
class SpfProbe:
    """Every TXT record at the domain, the SPF ones parsed, and the log of queries made."""

    domain: str
    txt: Answer
    records: tuple[SpfRecordCheck, ...]
    log: str = ""


def is_spf(text: str) -> bool:
    """RFC 7208 §4.5: a record is SPF if it is exactly ``v=spf1`` or starts with ``v=spf1 ``."""
    lowered = text.lower()
    return lowered == "v=spf1" or lowered.startswith("v=spf1 ")


def split_term(token: str) -> tuple[str, str, str]:
    """``-include:example.com`` -> ("-", "include", "example.com"); modifiers keep their ``=``."""
    qualifier = token[0] if token[:1] in "+-~?" else ""
    body = token[len(qualifier):]
    if "=" in body and (":" not in body or body.index("=") < body.index(":")):
        name, _, value = body.partition("=")
        return qualifier, name.lower() + "=", value
    for sep in (":", "/"):
        if sep in body:
            name, _, rest = body.partition(sep)
            return qualifier, name.lower(), rest if sep == ":" else sep + rest
    return qualifier, body.lower(), ""


def probe_spf(client: DnsClient, domain: str) -> SpfProbe:
    """The TXT records of ``domain``; each SPF record parsed by checkdmarc and walked for lookups."""
    txt = client.query(domain, "TXT")
    checks = tuple(_check_spf_record(client, domain, r) for r in sorted(txt.records) if is_spf(r))
    return SpfProbe(domain, txt, checks, client.evidence())


def _check_spf_record(client: DnsClient, domain: str, record: str) -> SpfRecordCheck:
    tree = walk_spf(client, domain, record, (domain.lower(),))
    error, kind, warnings = _checkdmarc_spf(client, domain, record)
    tokens = [split_term(t) for t in record.split()[1:]]
    all_term = next((f"{q or '+'}all" for q, name, _ in tokens if name == "all"), None)
    redirect = next((v for _, name, v in tokens if name == "redirect="), None)
    return SpfRecordCheck(record, error, kind, tuple(warnings), tree, all_term, redirect)


def _checkdmarc_spf(client: DnsClient, domain: str, record: str) -> tuple[str | None, str | None, list[str]]:
    """checkdmarc's parse of one record (syntax, loops, its own counts); DNS through our resolver."""
    from checkdmarc import spf as cd_spf
    from checkdmarc import utils as cd_utils

    cd_utils.DNS_CACHE.clear()  # its cache is keyed by name only, not by resolver
    try:
        parsed = cd_spf.parse_spf_record(
            record, domain, resolver=client.resolver, nameservers=client.nameservers(), ignore_too_many_lookups=True,
            timeout=client.settings.timeout_s, retries=client.settings.retries)
    except cd_spf.SPFError as exc:
        return str(exc.args[0] if exc.args else exc), type(exc).__name__, []
    warnings = list(parsed.get("warnings", []))
    if parsed.get("error"):
        return str(parsed["error"]), "SPFTooManyDNSLookups", warnings
    return None, None, warnings


def walk_spf(client: DnsClient, domain: str, record: str, chain: tuple[str, ...]) -> SpfNode:
    """Follow every DNS-querying term of ``record`` recursively, counting lookups and void lookups."""
    terms = tuple(_spf_term(client, domain, token, chain) for token in record.split()[1:])
    return SpfNode(domain, record, terms)


def _spf_term(client: DnsClient, domain: str, token: str, chain: tuple[str, ...]) -> SpfTerm:
    _, name, value = split_term(token)
    if name not in ("include", "redirect=", "a", "mx", "ptr", "exists"):
        return SpfTerm(token)
    if "%" in value:
        return SpfTerm(token, 1, detail="(macro: expanded only per message, not resolved)")
    target = (value.split("/")[0] or domain).rstrip(".").lower()
    try:
        dns.name.from_text(target)
    except dns.exception.DNSException:
        return SpfTerm(token, 1, detail=f"-> {target!r} is not a valid domain name (permerror)")
    if name in ("include", "redirect="):
        return _spf_include(client, token, target, chain)
    if name == "ptr":
        return SpfTerm(token, 1, detail="(depends on the client IP; RFC 7208 §5.5: do not use)")
    if name == "mx":
        return _spf_mx(client, token, target)
    rdtypes = ("A",) if name == "exists" else ("A", "AAAA")
    found = [r for t in rdtypes for r in client.query(target, t).records]
    detail = f"-> {', '.join(found)}" if found else f"-> {target} has no address (void)"
    return SpfTerm(token, 1, void=not found, detail=detail)


def _spf_mx(client: DnsClient, token: str, target: str) -> SpfTerm:
    answer = client.query(target, "MX")
    if not answer.found:
        return SpfTerm(token, 1, void=True, detail=f"-> {target} has no MX (void)")
    names = [r.split(" ", 1)[1].rstrip(".") for r in answer.records]
    detail = f"-> {', '.join(names)}"
    if len(names) > 10:
        detail += " (more than 10 MX names: permerror, RFC 7208 §4.6.4)"
    return SpfTerm(token, 1, detail=detail)


def _spf_include(client: DnsClient, token: str, target: str, chain: tuple[str, ...]) -> SpfTerm:
    if target in chain:
        return SpfTerm(token, 1, detail=f"-> loop back to {target} (permerror)",
                       child=SpfNode(target, None, problem="include/redirect loop"))
    if len(chain) > MAX_SPF_DEPTH:
        return SpfTerm(token, 1, detail="-> nested too deep, not followed")
    answer = client.query(target, "TXT")
    spf = [r for r in answer.records if is_spf(r)]
    if not spf:
        void = answer.status in NOT_FOUND
        return SpfTerm(token, 1, void=void, detail=f"-> {target}: no SPF record ({answer.status}; permerror)",
                       child=SpfNode(target, None, problem="no SPF record"))
    child = walk_spf(client, target, spf[0], (*chain, target))
    if len(spf) > 1:
        child = SpfNode(child.domain, child.record, child.terms, f"{len(spf)} SPF records (permerror)")
    return SpfTerm(token, 1, detail=f"-> {target}", child=child)


# --- SPF evaluation with pyspf through our resolver -------------------------------------------

def evaluate_spf_ip(client: DnsClient, domain: str, ip: str, helo: str) -> SpfEvaluation:
    """Run pyspf (a full RFC 7208 evaluator) for ``ip`` sending as postmaster@``domain``."""
    import spf as pyspf

    with _pyspf_through(client):
        query = pyspf.query(i=ip, s=f"postmaster@{domain}", h=helo, timeout=client.settings.lifetime_s)
        result, _code, explanation = query.check()
    if result == "temperror":
        raise DnsError(f"SPF evaluation of {domain} for {ip}: temperror ({explanation})")
    return SpfEvaluation(ip, result, str(explanation), query.lookups, query.void_lookups)


@contextmanager
def _pyspf_through(client: DnsClient) -> Iterator[None]:
    """pyspf looks names up through a module function; point it at our resolver for the call."""
    import spf as pyspf

    def lookup(name: str, qtype: str, tcpfallback: bool = True, timeout: float = 30) -> list:
        try:
            answer = client.resolver.resolve(name, qtype, raise_on_no_answer=False, search=False)
        except dns.resolver.NXDOMAIN:
            client.log.append(f"{name} {qtype} -> NXDOMAIN (pyspf)")
            return []
        except dns.exception.DNSException as exc:
            raise pyspf.TempError(str(translate_dns_exception(exc, name, qtype, client.settings))) from None
        values = [_pyspf_value(qtype, rdata) for rdata in answer.rrset or ()]
        client.log.append(f"{name} {qtype} -> {len(values)} records (pyspf)")
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


# --- DMARC ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReportDestination:
    """One rua/ruf mailto destination and, when external, whether it authorizes the domain."""

    uri: str
    address: str
    domain: str
    external: bool
    authorized: bool | None  # None for internal destinations (no authorization needed)
    authorization: Answer | None = None


@dataclass(frozen=True)
class DmarcRecordCheck:
    """One published DMARC record: checkdmarc's parse, its raw tags, and its rua destinations."""

    record: str
    error: str | None
    tags: tuple[tuple[str, str], ...]  # raw tags as written (pct included; RFC 9989 parsers drop it)
    policy: str | None  # p, as checkdmarc normalised it
    subdomain_policy: str | None
    warnings: tuple[str, ...]
    rua: tuple[ReportDestination, ...]

    def tag(self, name: str) -> str | None:
        """A raw tag's value, or None when the record does not set it."""
        return next((v for k, v in self.tags if k == name), None)


@dataclass(frozen=True)
class DmarcProbe:
    """The DMARC TXT records of a domain (with the organizational-domain fallback), parsed."""

    domain: str
    org_domain: str
    answer: Answer
    records: tuple[DmarcRecordCheck, ...]
    log: str = ""


def is_dmarc(text: str) -> bool:
    """RFC 7489 §6.6.3: the record starts with ``v=DMARC1``."""
    return text.replace(" ", "").upper().startswith("V=DMARC1")


def organizational_domain(domain: str) -> str:
    """The organizational domain (public suffix list, as checkdmarc computes it)."""
    from checkdmarc.utils import get_base_domain

    return get_base_domain(domain)


def probe_dmarc(client: DnsClient, domain: str) -> DmarcProbe:
    """``_dmarc.<domain>`` TXT, falling back to the organizational domain (RFC 7489 §6.6.3)."""
    org = organizational_domain(domain)
    answer = client.query(f"_dmarc.{domain}", "TXT")
    if not any(is_dmarc(r) for r in answer.records) and org != domain.lower():
        answer = client.query(f"_dmarc.{org}", "TXT")
    policy_domain = answer.name.removeprefix("_dmarc.")
    checks = tuple(_check_dmarc_record(client, policy_domain, r) for r in sorted(answer.records) if is_dmarc(r))
    return DmarcProbe(domain, org, answer, checks, client.evidence())


def raw_tags(record: str) -> tuple[tuple[str, str], ...]:
    """``v=DMARC1; p=none`` -> (("v", "DMARC1"), ("p", "none")): tag names lower-cased."""
    pairs = []
    for part in record.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            pairs.append((name.strip().lower(), value.strip()))
    return tuple(pairs)


def _check_dmarc_record(client: DnsClient, domain: str, record: str) -> DmarcRecordCheck:
    from checkdmarc import dmarc as cd_dmarc
    from checkdmarc import utils as cd_utils
    from checkdmarc.spf import SPFError

    cd_utils.DNS_CACHE.clear()
    error, policy, sp, warnings = None, None, None, []
    try:
        parsed = cd_dmarc.parse_dmarc_record(
            record, domain, resolver=client.resolver, nameservers=client.nameservers(),
            timeout=client.settings.timeout_s, retries=client.settings.retries)
        policy, sp = parsed["tags"]["p"]["value"], parsed["tags"]["sp"]["value"]
        warnings = [str(w) for w in parsed.get("warnings", [])]
    except (cd_dmarc.DMARCError, SPFError) as exc:  # SPFError: an SPF record where DMARC should be
        error = str(exc.args[0] if exc.args else exc)
    tags = raw_tags(record)
    rua_value = next((v for k, v in tags if k == "rua"), "")
    destinations = tuple(_destination(client, domain, uri.strip())
                         for uri in rua_value.split(",") if uri.strip())
    return DmarcRecordCheck(record, error, tags, policy, sp, tuple(warnings), destinations)


def _destination(client: DnsClient, domain: str, uri: str) -> ReportDestination:
    """A rua URI; external mailto destinations are checked per RFC 7489 §7.1."""
    address = uri.split("!")[0]
    address = address[len("mailto:"):] if address.lower().startswith("mailto:") else address
    dest_domain = address.rpartition("@")[2].lower().rstrip(".")
    external = bool(dest_domain) and organizational_domain(dest_domain) != organizational_domain(domain)
    if not external:
        return ReportDestination(uri, address, dest_domain, False, None)
    answer = client.query(f"{domain}._report._dmarc.{dest_domain}", "TXT")
    authorized = any(is_dmarc(r) for r in answer.records)
    return ReportDestination(uri, address, dest_domain, True, authorized, answer)


# --- DKIM, TLS-RPT, PTR -----------------------------------------------------------------------

def probe_dkim(client: DnsClient, domain: str, selector: str) -> Answer:
    """The TXT records at ``<selector>._domainkey.<domain>``."""
    return client.query(f"{selector}._domainkey.{domain}", "TXT")


def probe_tlsrpt(client: DnsClient, domain: str) -> Answer:
    """The TXT records at ``_smtp._tls.<domain>`` (RFC 8460 §3)."""
    return client.query(f"_smtp._tls.{domain}", "TXT")


@dataclass(frozen=True)
class PtrProbe:
    """The PTR names of an IP and the addresses each name resolves to (for FCrDNS)."""

    ip: str
    ptr: Answer
    forward: tuple[tuple[str, tuple[str, ...]], ...]


def probe_ptr(client: DnsClient, ip: str) -> PtrProbe:
    """PTR of ``ip`` and the A/AAAA of every name it returns."""
    ptr = client.query(dns.reversename.from_address(ip).to_text(), "PTR")
    forward = tuple((name.rstrip(".").lower(), client.addresses(name)) for name in ptr.records)
    return PtrProbe(ip, ptr, forward)


# --- DNS blocklists ---------------------------------------------------------------------------

@dataclass(frozen=True)
class DnsblLookup:
    """The A (and TXT, when listed) answers of one address in one zone."""

    ip: str
    a: Answer
    txt: Answer | None = None


@dataclass(frozen=True)
class DnsblProbe:
    """A blocklist's RFC 5782 §5 test entries and the lookups of the server's addresses."""

    zone: str
    test_listed: DnsblLookup  # 127.0.0.2 must be listed
    test_clean: DnsblLookup  # 127.0.0.1 must not be listed
    lookups: tuple[DnsblLookup, ...]


def dnsbl_name(ip: str, zone: str) -> str:
    """RFC 5782 §2.1/§2.4: reversed octets (IPv4) or nibbles (IPv6) under the zone."""
    address = ipaddress.ip_address(ip)
    if address.version == 4:
        return ".".join(reversed(str(address).split("."))) + f".{zone}"
    return ".".join(reversed(address.exploded.replace(":", ""))) + f".{zone}"


def _dnsbl_lookup(client: DnsClient, ip: str, zone: str) -> DnsblLookup:
    name = dnsbl_name(ip, zone)
    a = client.query(name, "A")
    return DnsblLookup(ip, a, client.query(name, "TXT") if a.found else None)


def probe_dnsbl_test_entries(client: DnsClient, zone: str) -> tuple[DnsblLookup, DnsblLookup]:
    """The zone's RFC 5782 §5 test entries: 127.0.0.2 (listed) and 127.0.0.1 (not listed)."""
    return _dnsbl_lookup(client, "127.0.0.2", zone), _dnsbl_lookup(client, "127.0.0.1", zone)


def probe_dnsbl(client: DnsClient, zone: str, ips: tuple[str, ...]) -> DnsblProbe:
    """Test entries first, then every server address."""
    listed, clean = probe_dnsbl_test_entries(client, zone)
    return DnsblProbe(zone, listed, clean, tuple(_dnsbl_lookup(client, ip, zone) for ip in ips))


# --- MTA-STS ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class HttpsFetch:
    """One HTTPS GET, certificate and host name verified; ``error`` says why it did not work."""

    url: str
    ip: str | None
    status: int | None = None
    content_type: str = ""
    body: str = ""
    error: str | None = None


@dataclass(frozen=True)
class MtaStsProbe:
    """The ``_mta-sts`` TXT records, the policy fetched over HTTPS, and the domain's MX names."""

    domain: str
    txt: Answer
    fetch: HttpsFetch | None
    mx_hosts: tuple[str, ...]
    log: str = ""


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to ``host`` (SNI, Host header, certificate name) at an address we resolved ourselves."""

    def __init__(self, host: str, ip: str, **kwargs: object) -> None:
        super().__init__(host, **kwargs)
        self._pinned_ip = ip

    def connect(self) -> None:
        sock = socket.create_connection((self._pinned_ip, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def fetch_https(host: str, ip: str, path: str, timeout_s: float, ca_file: str | None) -> HttpsFetch:
    """GET ``https://host/path`` from ``ip``; redirects are not followed (RFC 8461 §3.3).

    A certificate or HTTP problem is an observation (``error``); a connection that cannot be made
    at all raises ConnectError.
    """
    url = f"https://{host}{path}"
    context = ssl.create_default_context(cafile=ca_file)
    conn = _PinnedHTTPSConnection(host, ip, timeout=timeout_s, context=context)
    try:
        conn.request("GET", path, headers={"User-Agent": "mailaudit", "Connection": "close"})
        response = conn.getresponse()
        body = response.read(MAX_POLICY_BYTES + 1)
        return HttpsFetch(url, ip, response.status, response.getheader("Content-Type", ""),
                          body.decode("utf-8", "replace"))
    except ssl.SSLCertVerificationError as exc:
        return HttpsFetch(url, ip, error=f"certificate not valid for {host}: {exc.verify_message}")
    except ssl.SSLError as exc:
        return HttpsFetch(url, ip, error=f"TLS handshake failed: {exc.reason or exc}")
    except ConnectionRefusedError:
        raise ConnectError(f"{url} ({ip}:443): connection refused") from None
    except TimeoutError:
        raise ConnectError(f"{url} ({ip}:443): no answer within {timeout_s:g} s") from None
    except (OSError, http.client.HTTPException) as exc:
        raise ConnectError(f"{url} ({ip}:443): {exc}") from None
    finally:
        conn.close()


def probe_mta_sts(client: DnsClient, domain: str, timeout_s: float, ca_file: str | None) -> MtaStsProbe:
    """``_mta-sts.<domain>`` TXT; if present, the policy from ``mta-sts.<domain>``; the MX names."""
    txt = client.query(f"_mta-sts.{domain}", "TXT")
    mx = probe_mx(client, domain)
    mx_hosts = tuple(h.name for h in mx.hosts if h.name != ".")
    fetch = None
    if any(r.startswith("v=STSv1") for r in txt.records):
        host = f"mta-sts.{domain}"
        addresses = client.addresses(host)
        path = "/.well-known/mta-sts.txt"
        fetch = (fetch_https(host, addresses[0], path, timeout_s, ca_file) if addresses else
                 HttpsFetch(f"https://{host}{path}", None, error=f"{host} has no address"))
    return MtaStsProbe(domain, txt, fetch, mx_hosts, client.evidence())


# --- DANE -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PresentedChain:
    """The certificates a server presented after STARTTLS (leaf first), DER-encoded."""

    where: str
    certificates: tuple[bytes, ...] = field(repr=False)


@dataclass(frozen=True)
class DaneHost:
    """The TLSA records of one MX host (``_25._tcp.<host>``) with their DNSSEC status."""

    host: str
    tlsa: Answer


@dataclass(frozen=True)
class DaneProbe:
    """MX (with DNSSEC status), the TLSA records of the MX hosts that are this server, the chain."""

    domain: str
    mx: Answer
    hosts: tuple[DaneHost, ...]
    chain: PresentedChain | None
    log: str = ""


def fetch_starttls_chain(ip: str, port: int, server_name: str, timeout_s: float) -> PresentedChain:
    """EHLO, STARTTLS and the presented certificate chain (no validation: DANE judges it)."""
    settings = SessionSettings(connect_timeout=timeout_s, command_timeout=timeout_s)
    session, unavailable = open_session(ip, server_name, Channel(port, "starttls"), settings)
    try:
        if unavailable:
            raise ProtocolError(f"{session.where}: {unavailable}; no certificate to match the TLSA records")
        return PresentedChain(session.where, session.peer_certificates())
    finally:
        session.close()


def probe_dane(client: DnsClient, domain: str, server_ip: str, server_host: str,
               timeout_s: float) -> DaneProbe:
    """TLSA for the MX hosts that resolve to ``server_ip`` (else for ``server_host``), and the chain."""
    mx = probe_mx(client, domain, dnssec=True)
    names = [h.name for h in mx.hosts if server_ip in h.addresses] or [server_host.lower()]
    hosts = tuple(DaneHost(n, client.query(f"_25._tcp.{n}", "TLSA", dnssec=True)) for n in names)
    chain = None
    if any(h.tlsa.found for h in hosts):
        chain = fetch_starttls_chain(server_ip, 25, hosts[0].host, timeout_s)
    return DaneProbe(domain, mx.answer, hosts, chain, client.evidence())
