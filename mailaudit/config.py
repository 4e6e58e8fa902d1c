"""The audit configuration: every option, validated once before any probe runs."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from mailaudit.errors import ConfigError, DnsError
from mailaudit.policy import Policy, load_policy
from mailaudit.resolver import DnsServer, is_ip, make_resolver, parse_dns_server, resolve_addresses
from mailaudit.waivers import Waiver, load_waivers


@dataclass(frozen=True)
class Target:
    """One audited server: the name given, the address probed, its mail domain, its API URL."""

    host: str
    ip: str
    domain: str
    api_url: str | None = None

    def __str__(self) -> str:
        return self.host


@dataclass(frozen=True)
class Options:
    """The raw option values, as the command line gave them (no pytest types)."""

    servers: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    dns_server: str | None = None
    policy: str = "policies/baseline.yaml"
    waivers: str | None = None
    intrusive: bool = False
    api_urls: tuple[str, ...] = ()
    api_insecure: bool = False
    ca_file: str | None = None
    smtp_user: str | None = None
    local_recipient: str | None = None
    relay_recipient_domain: str | None = None
    dkim_selectors: tuple[str, ...] = ()
    outbound_ips: tuple[str, ...] = ()
    tls_ports: str | None = None


@dataclass(frozen=True)
class AuditConfig:
    """Everything a probe or test needs to know about this run. Secrets are excluded from repr."""

    targets: tuple[Target, ...]
    policy: Policy
    policy_path: Path
    dns_server: DnsServer | None
    waivers: tuple[Waiver, ...]
    intrusive: bool
    options: Options
    smtp_user: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    api_user: str | None = None
    api_password: str | None = field(default=None, repr=False)

    @property
    def relay_recipient_domain(self) -> str:
        """Where relay probes send RCPT TO: the option, or the policy's undeliverable domain."""
        return self.options.relay_recipient_domain or self.policy.smtp.relay_recipient_domain

    @property
    def ca_file(self) -> str | None:
        """A CA bundle to trust instead of the system's (lab CA, private CA)."""
        return self.options.ca_file

    @property
    def tls_ports(self) -> tuple[int, ...] | None:
        """Ports given by --tls-ports, or None for the policy's."""
        if not self.options.tls_ports:
            return None
        return tuple(int(p) for p in self.options.tls_ports.split(","))


def build_config(options: Options, env: dict[str, str] | None = None) -> AuditConfig:
    """Validate every option and resolve every server; raise ConfigError with one line."""
    env = dict(os.environ if env is None else env)
    policy_path = Path(options.policy)
    policy = load_policy(policy_path)
    dns_server = parse_dns_server(options.dns_server) if options.dns_server else None
    _check_files(options)
    _check_ports(options.tls_ports)
    _check_ips(options.outbound_ips)
    targets = _targets(options, dns_server, policy)
    return AuditConfig(
        targets=targets,
        policy=policy,
        policy_path=policy_path,
        dns_server=dns_server,
        waivers=load_waivers(Path(options.waivers)) if options.waivers else (),
        intrusive=options.intrusive,
        options=options,
        smtp_user=options.smtp_user,
        smtp_password=env.get("MAILAUDIT_SMTP_PASSWORD") or None,
        api_user=env.get("MAILAUDIT_API_USER") or None,
        api_password=env.get("MAILAUDIT_API_PASSWORD") or None,
    )


def _targets(options: Options, dns_server: DnsServer | None, policy: Policy) -> tuple[Target, ...]:
    if options.domains and len(options.domains) not in (1, len(options.servers)):
        raise ConfigError("--domain: give one for all servers or one per --server, in order")
    if options.api_urls and len(options.api_urls) not in (1, len(options.servers)):
        raise ConfigError("--api-url: give one (may hold {server}) or one per --server, in order")
    resolver = make_resolver(dns_server, timeout_s=policy.smtp.connect_timeout_s)
    targets = []
    for index, host in enumerate(options.servers):
        domain = _pick(options.domains, index) or _domain_of(host)
        api_url = _pick(options.api_urls, index)
        targets.append(Target(
            host=host,
            ip=_address_of(host, resolver, dns_server),
            domain=domain,
            api_url=api_url.replace("{server}", host).rstrip("/") if api_url else None,
        ))
    return tuple(targets)


def _pick(values: tuple[str, ...], index: int) -> str | None:
    if not values:
        return None
    return values[0] if len(values) == 1 else values[index]


def _domain_of(host: str) -> str:
    """The mail domain by default: the server name without its first label."""
    if is_ip(host):
        raise ConfigError(f"--server {host}: an IP address needs --domain")
    labels = host.rstrip(".").split(".")
    if len(labels) < 3:
        raise ConfigError(f"--server {host}: cannot derive the mail domain; give --domain")
    return ".".join(labels[1:])


def _address_of(host: str, resolver, dns_server: DnsServer | None) -> str:
    """The IP to probe: the literal, or the first A/AAAA answer (IPv4 first)."""
    if is_ip(host):
        return host
    via = f" via {dns_server}" if dns_server else ""
    try:
        addresses = resolve_addresses(resolver, host)
    except DnsError as exc:
        raise ConfigError(f"--server {host}: cannot resolve{via}: {exc}") from None
    if not addresses:
        raise ConfigError(f"--server {host}: no A/AAAA record{via} (unresolvable server)")
    return addresses[0]


def _check_files(options: Options) -> None:
    for flag, name in (("--ca-file", options.ca_file), ("--waivers", options.waivers)):
        if name and not Path(name).is_file():
            raise ConfigError(f"{flag} {name}: no such file")


def _check_ports(spec: str | None) -> None:
    if not spec:
        return
    for part in spec.split(","):
        if not part.strip().isdigit() or not 0 < int(part) < 65536:
            raise ConfigError(f"--tls-ports {spec!r}: expected a comma list of port numbers")


def _check_ips(ips: tuple[str, ...]) -> None:
    for ip in ips:
        if not is_ip(ip):
            raise ConfigError(f"--outbound-ip {ip!r}: not an IP address")
