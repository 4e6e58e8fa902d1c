"""The one place DNS resolvers are made: every query of the suite honours --dns-server."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import dns.exception
import dns.resolver

from mailaudit.errors import ConfigError, DnsError


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
    """Parse ``IP``, ``IP:PORT`` or ``[IPv6]:PORT``; anything else is a ConfigError."""
    text = spec.strip()
    ip, port = text, "53"
    if text.startswith("["):
        ip, _, rest = text[1:].partition("]")
        port = rest.lstrip(":") or "53"
    elif text.count(":") == 1:
        ip, port = text.split(":")
    try:
        ipaddress.ip_address(ip)
        port_no = int(port)
    except ValueError:
        raise ConfigError(f"--dns-server {spec!r}: expected IP or IP:PORT") from None
    if not 0 < port_no < 65536:
        raise ConfigError(f"--dns-server {spec!r}: port out of range")
    return DnsServer(ip, port_no)


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


def resolve_addresses(resolver: dns.resolver.Resolver, name: str) -> list[str]:
    """A and AAAA addresses of a name; NXDOMAIN/no address is an empty list, failures DnsError."""
    addresses: list[str] = []
    for rdtype in ("A", "AAAA"):
        try:
            answer = resolver.resolve(name, rdtype)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            continue
        except dns.resolver.NoNameservers:
            raise DnsError(f"{name} {rdtype}: SERVFAIL or refused by every nameserver") from None
        except dns.exception.Timeout:
            raise DnsError(f"{name} {rdtype}: no answer within {resolver.lifetime:g} s") from None
        addresses.extend(rdata.to_text() for rdata in answer)
    return addresses
