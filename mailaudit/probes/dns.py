"""DNS probes: every query of the DNS requirements goes through one resolver (``--dns-server``).

NXDOMAIN and NODATA are answers (an :class:`Answer` with no records); SERVFAIL, REFUSED, FORMERR,
a malformed reply and silence raise :class:`mailaudit.errors.DnsError` with one line naming the
query and the resolver (:func:`mailaudit.resolver.exchange`). All DNS work for one server shares a
time budget (policy ``dns.server_deadline_s``); past it a query raises BudgetExceeded carrying the
queries made so far.

The probes only collect: MX, DMARC/DKIM/TLS-RPT/MTA-STS records, PTR and blocklist answers, TLSA
records with their DNSSEC status and the certificate the server presents (SPF is in
:mod:`mailaudit.probes.spf`). Judging is in :mod:`mailaudit.evaluate.dns`; the record grammars are
in :mod:`mailaudit.dns_records`.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.reversename
import dns.rrset

from mailaudit.budget import Deadline
from mailaudit.dns_records import (
    DmarcSyntax,
    is_dmarc_candidate,
    parse_dmarc,
    starts_with_dmarc1,
)
from mailaudit.errors import BudgetExceeded, ConnectError, DnsError, ProtocolError
from mailaudit.probes.relay import Channel, SessionSettings, open_session
from mailaudit.resolver import DnsServer, exchange, query_name, system_servers

MAX_POLICY_BYTES = 64 * 1024  # RFC 8461 §3.3: senders may refuse larger MTA-STS policies
NOT_FOUND = ("NXDOMAIN", "NODATA")
EDNS_PAYLOAD = 1232  # RFC 9715 / DNS flag day 2020: avoids fragmentation; larger answers go over TCP


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


class DnsWorkBudget:
    """The time all DNS probes of one server may take together (policy ``dns.server_deadline_s``).

    Only time spent inside :meth:`running` counts, so the other families' probes that run between
    two DNS probes of the same server do not use it up.
    """

    def __init__(self, seconds: float, what: str, policy_key: str = "dns.server_deadline_s") -> None:
        self.seconds = seconds
        self.what = what
        self.policy_key = policy_key
        self.spent = 0.0

    @contextmanager
    def running(self) -> Iterator[Deadline]:
        """A deadline for one probe: what is left of the budget; the time taken is charged."""
        started = time.monotonic()
        deadline = Deadline(started + self.seconds - self.spent, self.what, self.seconds, self.policy_key)
        try:
            yield deadline
        finally:
            self.spent += time.monotonic() - started


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


class DnsClient:
    """Queries through the configured resolver within a deadline; logs every answer for the evidence."""

    def __init__(self, settings: DnsSettings, deadline: Deadline | None = None) -> None:
        self.settings = settings
        self.deadline = deadline or Deadline.never()
        self.servers = (settings.server,) if settings.server else system_servers()
        self.log: list[str] = []
        self.queries = 0

    def message(self, name: str, rdtype: str,
                dnssec: bool = False) -> tuple[dns.message.Message, dns.rrset.RRset | None]:
        """Ask once (with the policy's retries): the reply (NOERROR or NXDOMAIN) and its answer
        RRset after following CNAMEs (None when there is none). Failures raise DnsError, the
        deadline BudgetExceeded, each carrying the queries made so far."""
        where = f"{name} {rdtype} via {self.settings.where}"
        self.queries += 1
        try:
            request = dns.message.make_query(query_name(name, where), rdtype, use_edns=0,
                                             payload=EDNS_PAYLOAD, want_dnssec=dnssec)
            if dnssec:
                request.flags |= dns.flags.AD
            response = exchange(request, self.servers, self.settings.timeout_s, self.settings.retries,
                                self.deadline, where)
            if response.rcode() == dns.rcode.NXDOMAIN:
                return response, None
            return response, _chained_answer(response, where)
        except (DnsError, BudgetExceeded) as exc:
            raise type(exc)(str(exc), evidence=self.evidence(),
                            evidence_name="DNS queries before the failure") from None

    def query(self, name: str, rdtype: str, dnssec: bool = False) -> Answer:
        """One question as an :class:`Answer`; NXDOMAIN/NODATA are answers, failures DnsError."""
        response, rrset = self.message(name, rdtype, dnssec)
        if response.rcode() == dns.rcode.NXDOMAIN:
            answer = Answer(name, rdtype, "NXDOMAIN")
        else:
            secure = bool(response.flags & dns.flags.AD)
            signed = any(rrset.rdtype == dns.rdatatype.RRSIG for rrset in response.answer)
            records = tuple(_rdata_text(rdata) for rdata in rrset or ())
            answer = Answer(name, rdtype, "NOERROR" if records else "NODATA", records, secure, signed)
        self.log.append(answer.line())
        return answer

    def addresses(self, name: str) -> tuple[str, ...]:
        """The A and AAAA addresses of a name (empty when it has none)."""
        return self.query(name, "A").records + self.query(name, "AAAA").records

    def evidence(self) -> str:
        """Every query asked so far, one per line."""
        return "\n".join(self.log)


def _chained_answer(response: dns.message.Message, where: str) -> dns.rrset.RRset | None:
    """The answer RRset for the question, following CNAMEs inside the reply (RFC 1034 §3.6.2)."""
    try:
        return response.resolve_chaining().answer
    except dns.exception.DNSException as exc:
        raise DnsError(f"{where}: malformed answer ({type(exc).__name__}: {str(exc)[:120]})") from None


def _rdata_text(rdata: object) -> str:
    """TXT as its strings joined (RFC 7208 §3.3), everything else in presentation format."""
    strings = getattr(rdata, "strings", None)
    if strings is not None:
        return b"".join(strings).decode("utf-8", "replace")
    return rdata.to_text()


def is_dns_name(text: str) -> bool:
    """True when DNS can carry ``text`` as a name (labels 1-63 octets, at most 255 in all)."""
    try:
        dns.name.from_text(text)
    except dns.exception.DNSException:
        return False
    return bool(text) and ".." not in text


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


# --- DMARC ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReportDestination:
    """One rua mailto destination and, when external, whether it authorizes the domain."""

    uri: str
    address: str
    domain: str
    external: bool
    authorized: bool | None  # None for internal destinations (no authorization needed)
    authorization: Answer | None = None
    note: str = ""  # why the authorization could not be asked


@dataclass(frozen=True)
class DmarcRecordCheck:
    """One published DMARC record: its parse (RFC 7489 grammar) and its rua destinations."""

    record: str
    syntax: DmarcSyntax
    rua: tuple[ReportDestination, ...] = ()

    @classmethod
    def of(cls, record: str, rua: tuple[ReportDestination, ...] = ()) -> DmarcRecordCheck:
        """Parse ``record`` (no DNS): for tests and tools."""
        return cls(record, parse_dmarc(record), tuple(rua))

    @property
    def errors(self) -> tuple[str, ...]:
        """Grammar errors; empty when the record is valid."""
        return self.syntax.errors

    @property
    def error(self) -> str | None:
        """The errors as one line, None when valid."""
        return "; ".join(self.syntax.errors) or None

    @property
    def warnings(self) -> tuple[str, ...]:
        """Valid, but worth saying (unknown tags)."""
        return self.syntax.warnings

    @property
    def tags(self) -> tuple[tuple[str, str], ...]:
        """Tags as written, names lower-cased."""
        return self.syntax.tags

    @property
    def policy(self) -> str | None:
        """``p`` (None when absent or invalid)."""
        return self.syntax.policy

    @property
    def subdomain_policy(self) -> str | None:
        """``sp``, defaulting to ``p``."""
        return self.syntax.subdomain_policy

    def tag(self, name: str) -> str | None:
        """A raw tag's value, or None when the record does not set it."""
        return self.syntax.tag(name)


@dataclass(frozen=True)
class DmarcProbe:
    """The DMARC TXT records of a domain (with the organizational-domain fallback), parsed."""

    domain: str
    org_domain: str
    answer: Answer
    records: tuple[DmarcRecordCheck, ...]
    log: str = ""


def organizational_domain(domain: str) -> str:
    """The organizational domain (public suffix list, as checkdmarc computes it)."""
    from checkdmarc.utils import get_base_domain

    return get_base_domain(domain)


def probe_dmarc(client: DnsClient, domain: str) -> DmarcProbe:
    """``_dmarc.<domain>`` TXT, falling back to the organizational domain (RFC 7489 §6.6.3)."""
    org = organizational_domain(domain)
    answer = client.query(f"_dmarc.{domain}", "TXT")
    if not any(is_dmarc_candidate(r) for r in answer.records) and org != domain.lower():
        answer = client.query(f"_dmarc.{org}", "TXT")
    policy_domain = answer.name.removeprefix("_dmarc.")
    candidates = sorted(r for r in answer.records if is_dmarc_candidate(r))
    checks = tuple(_check_dmarc_record(client, policy_domain, r) for r in candidates)
    return DmarcProbe(domain, org, answer, checks, client.evidence())


def _check_dmarc_record(client: DnsClient, domain: str, record: str) -> DmarcRecordCheck:
    syntax = parse_dmarc(record)
    destinations = tuple(_destination(client, domain, uri.uri, uri.address) for uri in syntax.rua if uri.address)
    return DmarcRecordCheck(record, syntax, destinations)


def _destination(client: DnsClient, domain: str, uri: str, address: str) -> ReportDestination:
    """A rua mailto URI; external destinations are checked per RFC 7489 §7.1."""
    dest_domain = address.rpartition("@")[2].lower().rstrip(".")
    external = organizational_domain(dest_domain) != organizational_domain(domain)
    if not external:
        return ReportDestination(uri, address, dest_domain, False, None)
    name = f"{domain}._report._dmarc.{dest_domain}"
    if not is_dns_name(name):
        return ReportDestination(uri, address, dest_domain, True, False,
                                 note=f"{name[:80]}… is too long a name to ask")
    answer = client.query(name, "TXT")
    return ReportDestination(uri, address, dest_domain, True, any(starts_with_dmarc1(r) for r in answer.records),
                             answer)


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


def fetch_https(host: str, ip: str, path: str, timeout_s: float, ca_file: str | None,
                deadline: Deadline | None = None) -> HttpsFetch:
    """GET ``https://host/path`` from ``ip``; redirects are not followed (RFC 8461 §3.3).

    The whole fetch (connect, handshake, request, body of at most 64 KiB) takes at most
    ``timeout_s``, cut to ``deadline``: a server that trickles bytes is cut off there. A
    certificate or HTTP problem is an observation (``error``); a connection that cannot be made
    or finished raises ConnectError.
    """
    url = f"https://{host}{path}"
    total = (deadline or Deadline.never()).timeout(timeout_s)
    context = ssl.create_default_context(cafile=ca_file)
    conn = _PinnedHTTPSConnection(host, ip, timeout=total, context=context)
    watchdog = _Watchdog(conn, total)
    try:
        conn.request("GET", path, headers={"User-Agent": "mailaudit", "Connection": "close"})
        response = conn.getresponse()
        body = response.read(MAX_POLICY_BYTES + 1)
        if watchdog.fired.is_set():
            raise ConnectError(f"{url} ({ip}:443): no complete answer within {total:g} s")
        return HttpsFetch(url, ip, response.status, response.getheader("Content-Type", ""),
                          body.decode("utf-8", "replace"))
    except ssl.SSLCertVerificationError as exc:
        return HttpsFetch(url, ip, error=f"certificate not valid for {host}: {exc.verify_message}")
    except ssl.SSLError as exc:
        if watchdog.fired.is_set():
            raise ConnectError(f"{url} ({ip}:443): no complete answer within {total:g} s") from None
        return HttpsFetch(url, ip, error=f"TLS handshake failed: {exc.reason or exc}")
    except ConnectionRefusedError:
        raise ConnectError(f"{url} ({ip}:443): connection refused") from None
    except TimeoutError:
        raise ConnectError(f"{url} ({ip}:443): no answer within {total:g} s") from None
    except (OSError, http.client.HTTPException) as exc:
        if watchdog.fired.is_set():
            raise ConnectError(f"{url} ({ip}:443): no complete answer within {total:g} s") from None
        raise ConnectError(f"{url} ({ip}:443): {exc}") from None
    finally:
        watchdog.cancel()
        conn.close()


class _Watchdog:
    """Shuts a connection's socket down after ``seconds``, so no trickle outlasts the fetch's bound."""

    def __init__(self, conn: http.client.HTTPConnection, seconds: float) -> None:
        self.conn = conn
        self.fired = threading.Event()
        self.timer = threading.Timer(seconds, self._fire)
        self.timer.daemon = True
        self.timer.start()

    def _fire(self) -> None:
        self.fired.set()
        sock = self.conn.sock
        if sock is not None:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        """Stop the timer (the fetch ended in time)."""
        self.timer.cancel()


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
        fetch = (fetch_https(host, addresses[0], path, timeout_s, ca_file, client.deadline) if addresses else
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


def fetch_starttls_chain(ip: str, port: int, server_name: str, timeout_s: float,
                         deadline: Deadline | None = None) -> PresentedChain:
    """EHLO, STARTTLS and the presented certificate chain (no validation: DANE judges it)."""
    settings = SessionSettings(connect_timeout=timeout_s, command_timeout=timeout_s,
                               deadline=deadline or Deadline.never())
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
        chain = fetch_starttls_chain(server_ip, 25, hosts[0].host, timeout_s, client.deadline)
    return DaneProbe(domain, mx.answer, hosts, chain, client.evidence())
