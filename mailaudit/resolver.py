"""The one place DNS resolvers are made and DNS questions are asked: every query of the suite
honours --dns-server, and every failure becomes a DnsError saying what went wrong.

:func:`exchange` asks the question itself (UDP, TCP when the answer is truncated) instead of
through dnspython's ``Resolver``, because the resolver silently drops a reply it cannot parse and
waits for its lifetime to end: a malformed answer would read "no answer within 6 s". Here it is
named as malformed; FORMERR, SERVFAIL and REFUSED are named by their rcode; only silence is a
timeout. Every wait is cut to the caller's :class:`~mailaudit.budget.Deadline`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.resolver

from mailaudit.budget import Deadline
from mailaudit.errors import ConfigError, DnsError

ANSWER_RCODES = (dns.rcode.NOERROR, dns.rcode.NXDOMAIN)  # NXDOMAIN is an answer, not a failure


@dataclass(frozen=True)
class DnsServer:
    """A resolver address given as IP[:PORT] (IPv6 as [IP]:PORT)."""

    ip: str
    port: int = 53

    def __str__(self) -> str:
        host = f"[{self.ip}]" if ":" in self.ip else self.ip
        return f"{host}:{self.port}"


def is_ip(text: str) -> bool:
    """True for an IPv4 or IPv6 address literal."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def parse_dns_server(spec: str) -> DnsServer:
    """Parse ``IP``, ``IP:PORT`` or ``[IPv6]:PORT`` (port in ASCII digits); else a ConfigError."""
    text = spec.strip()
    ip, port = text, "53"
    if text.startswith("["):
        ip, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":") or "53"
    elif text.count(":") == 1:
        ip, port = text.split(":")
    if not is_ip(ip) or not re.fullmatch(r"[0-9]{1,5}", port, re.ASCII):
        raise ConfigError(f"--dns-server {spec!r}: expected IP or IP:PORT")
    if not 0 < int(port) < 65536:
        raise ConfigError(f"--dns-server {spec!r}: port out of range")
    return DnsServer(ip, int(port))


def make_resolver(server: DnsServer | None, timeout_s: float = 5.0) -> dns.resolver.Resolver:
    """A resolver using ``server`` (or the system's), with a total lifetime per query."""
    if server is None:
        try:
            resolver = dns.resolver.Resolver()
        except dns.resolver.NoResolverConfiguration:
            raise ConfigError("no system resolver configured; give --dns-server") from None
    else:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [server.ip]
        resolver.port = server.port
    resolver.timeout = timeout_s
    resolver.lifetime = timeout_s
    return resolver


def servers_of(resolver: dns.resolver.Resolver) -> tuple[DnsServer, ...]:
    """The plain-DNS servers a dnspython resolver would ask."""
    servers = []
    for nameserver in resolver.nameservers:
        if isinstance(nameserver, str):
            servers.append(DnsServer(nameserver, resolver.port))
        elif hasattr(nameserver, "address") and hasattr(nameserver, "port"):
            servers.append(DnsServer(nameserver.address, nameserver.port))
    if not servers:
        raise ConfigError("the resolver configuration names no plain DNS server; give --dns-server")
    return tuple(servers)


def system_servers() -> tuple[DnsServer, ...]:
    """The servers of /etc/resolv.conf (ConfigError when there are none)."""
    return servers_of(make_resolver(None))


def query_name(name: str, where: str) -> dns.name.Name:
    """``name`` as an absolute DNS name; a name DNS cannot carry is a DnsError naming it."""
    try:
        return dns.name.from_text(name)
    except dns.exception.DNSException as exc:
        raise DnsError(f"{where}: {name[:80]!r} is not a valid DNS name ({exc})") from None


@dataclass
class _Failures:
    """What went wrong during one exchange, for the error message."""

    timeouts: int = 0
    rcodes: list[str] = field(default_factory=list)
    malformed: list[tuple[str, DnsServer]] = field(default_factory=list)
    unreachable: list[tuple[str, DnsServer]] = field(default_factory=list)

    def broken(self) -> int:
        """How many servers answered unusably so far (not asked again)."""
        return len(self.malformed) + len(self.unreachable)


def exchange(request: dns.message.QueryMessage, servers: Sequence[DnsServer], timeout_s: float,
             retries: int, deadline: Deadline, where: str) -> dns.message.Message:
    """Ask ``servers`` in turn, ``retries + 1`` rounds, each wait cut to the deadline.

    Returns the first reply whose rcode is NOERROR or NXDOMAIN. A server answering another
    rcode (SERVFAIL, REFUSED, FORMERR...) or a malformed reply is not asked again; silence is
    retried. When no server gave an answer: DnsError naming every failure (``where`` names the
    question and the resolver). BudgetExceeded once the deadline has passed.
    """
    failures, pending = _Failures(), list(servers)
    for _ in range(retries + 1):
        for server in list(pending):
            broken, timeouts = failures.broken(), failures.timeouts
            response = _ask_once(request, server, deadline.timeout(timeout_s), failures)
            if response is not None and response.rcode() in ANSWER_RCODES:
                return response
            if failures.timeouts > timeouts:
                deadline.check()  # the wait was cut by the deadline: that, not the server, ended it
            if response is not None:
                failures.rcodes.append(f"{dns.rcode.to_text(response.rcode())} from {server}")
            if response is not None or failures.broken() > broken:
                pending.remove(server)  # it answered, but not usably: asking again changes nothing
        if not pending:
            break
    raise DnsError(_failure_message(where, failures, timeout_s, retries))


def _ask_once(request: dns.message.QueryMessage, server: DnsServer, timeout: float,
              failures: _Failures) -> dns.message.Message | None:
    """One UDP exchange (TCP if truncated); None after a timeout or a malformed reply."""
    transport = "UDP"
    try:
        try:
            return dns.query.udp(request, server.ip, timeout=timeout, port=server.port,
                                 ignore_unexpected=True, raise_on_truncation=True)
        except dns.message.Truncated:
            transport = "TCP, after a truncated UDP answer"
            return dns.query.tcp(request, server.ip, timeout=timeout, port=server.port)
    except dns.exception.Timeout:
        failures.timeouts += 1
    except (dns.exception.DNSException, ValueError) as exc:  # the reply could not be parsed
        failures.malformed.append((f"{type(exc).__name__}: {str(exc)[:120] or 'unparsable reply'}", server))
    except EOFError:
        failures.malformed.append(("connection closed before a full reply", server))
    except OSError as exc:
        failures.unreachable.append((f"{transport}: {exc.strerror or type(exc).__name__}", server))
    return None


def _failure_message(where: str, failures: _Failures, timeout_s: float, retries: int) -> str:
    if failures.malformed:
        shown = "; ".join(f"{text} from {server}" for text, server in failures.malformed)
        return f"{where}: malformed answer ({shown})"
    if failures.unreachable:
        shown = "; ".join(f"{text} ({server})" for text, server in failures.unreachable)
        return f"{where}: cannot reach the resolver ({shown})"
    if failures.rcodes:
        rcodes = "; ".join(failures.rcodes)
        if "FORMERR" in rcodes:
            return f"{where}: {rcodes} (FORMERR: a format error, the server could not parse the query)"
        return f"{where}: {rcodes} (the resolver could not answer)"
    tries = retries + 1
    return f"{where}: no answer within {timeout_s * tries:g} s ({tries} tries)"


def resolve_addresses(resolver: dns.resolver.Resolver, name: str) -> list[str]:
    """A and AAAA addresses of a name; NXDOMAIN/no address is an empty list, failures DnsError."""
    servers = servers_of(resolver)
    qname = query_name(name, name)
    addresses: list[str] = []
    for rdtype in ("A", "AAAA"):
        request = dns.message.make_query(qname, rdtype)
        response = exchange(request, servers, resolver.timeout, 0, Deadline.never(), f"{name} {rdtype}")
        try:
            rrset = response.resolve_chaining().answer
        except dns.exception.DNSException as exc:
            raise DnsError(f"{name} {rdtype}: malformed answer ({exc})") from None
        addresses.extend(rdata.to_text() for rdata in rrset or ())
    return addresses
