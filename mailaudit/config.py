"""The audit configuration: every option, validated once before any probe runs."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from mailaudit.errors import ConfigError, DnsError
from mailaudit.inventory import Inventory, ServerEntry, credentials, load_inventory
from mailaudit.policy import Policy, load_policy
from mailaudit.redact import register_secret
from mailaudit.resolver import DnsServer, is_ip, make_resolver, parse_dns_server, resolve_addresses
from mailaudit.shard import parse_shard, select_shard
from mailaudit.syntax import (
    BadSyntax,
    check_domain,
    check_local_part,
    check_mailbox,
    check_port_list,
    check_selector,
    check_server,
    check_text,
    check_url,
)
from mailaudit.waivers import Waiver, load_waivers

T = TypeVar("T")


@dataclass(frozen=True)
class Target:
    """One audited server: the name given, the address probed, its mail domain, and its own inputs
    (from the inventory, else the command line). Passwords are excluded from repr."""

    host: str
    ip: str
    domain: str
    api_url: str | None = None
    smtp_user: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    api_user: str | None = None
    api_password: str | None = field(default=None, repr=False)
    dkim_selectors: tuple[str, ...] = ()
    tls_ports: tuple[int, ...] | None = None
    outbound_ips: tuple[str, ...] = ()
    local_recipient: str | None = None
    tags: tuple[str, ...] = ()

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
    api_allow_http: bool = False  # --api-allow-http: plain http:// API URLs allowed (shown in the report)
    inventory: str | None = None  # --inventory FILE: the servers and their own inputs (instead of --server)
    shard: str | None = None  # --shard K/N: audit only shard K of the servers


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
        if self.options.tls_ports is None:
            return None
        return check_port_list(self.options.tls_ports)


def build_config(options: Options, env: dict[str, str] | None = None) -> AuditConfig:
    """Validate every option and resolve every server; raise ConfigError with one line.

    Cheap checks come first (syntax of every value, files), then the policy and waivers, and
    only then DNS (resolving each --server): a typo never costs a query."""
    env = dict(os.environ if env is None else env)
    options = checked_options(options)
    dns_server = parse_dns_server(options.dns_server) if options.dns_server else None
    _check_files(options)
    smtp_password, api_user, api_password = _secrets(options, env)
    inventory = _inventory(options)
    policy_path = Path(options.policy)
    policy = load_policy(policy_path)
    waivers = load_waivers(Path(options.waivers)) if options.waivers else ()
    defaults = Target("", "", "", smtp_user=options.smtp_user, smtp_password=smtp_password, api_user=api_user,
                      api_password=api_password, dkim_selectors=options.dkim_selectors,
                      tls_ports=check_port_list(options.tls_ports) if options.tls_ports else None,
                      outbound_ips=options.outbound_ips, local_recipient=options.local_recipient)
    resolver = make_resolver(dns_server, timeout_s=policy.smtp.connect_timeout_s)
    if inventory is not None:
        targets = tuple(_inventory_target(entry, defaults, options, resolver, dns_server, env)
                        for entry in _shard(options, inventory.servers, lambda e: e.server))
    else:
        targets = _targets(options, _shard(options, options.servers, str), defaults, resolver, dns_server)
    return AuditConfig(
        targets=targets,
        policy=policy,
        policy_path=policy_path,
        dns_server=dns_server,
        waivers=waivers,
        intrusive=options.intrusive,
        options=options,
        smtp_user=options.smtp_user,
        smtp_password=smtp_password,
        api_user=api_user,
        api_password=api_password,
    )


def checked_options(options: Options) -> Options:
    """Check the syntax of every option value (no I/O); return them normalised (domains without a
    final dot). Raise ConfigError with one line naming the option and the value."""
    _check_counts(options)
    for server in options.servers:
        _check("--server", server, check_server)
    for selector in options.dkim_selectors:
        _check("--dkim-selector", selector, check_selector)
    for ip in options.outbound_ips:
        _check("--outbound-ip", ip, _check_ip)
    for flag, value in (("--policy", options.policy), ("--waivers", options.waivers),
                        ("--ca-file", options.ca_file), ("--dns-server", options.dns_server)):
        if value is not None:
            _check(flag, value, check_text)
    if options.local_recipient is not None:
        _check("--local-recipient", options.local_recipient, check_mailbox)
    if options.smtp_user is not None:
        _check("--smtp-user", options.smtp_user, check_mailbox if "@" in options.smtp_user else check_local_part)
    if options.tls_ports is not None:
        _check("--tls-ports", options.tls_ports, check_port_list)
    schemes = ("https", "http") if options.api_allow_http else ("https",)
    for url in options.api_urls:
        _check("--api-url", url, lambda value: check_url(value, schemes))
    relay = options.relay_recipient_domain
    return dataclasses.replace(
        options,
        domains=tuple(_check("--domain", domain, check_domain) for domain in options.domains),
        relay_recipient_domain=None if relay is None else _check("--relay-recipient-domain", relay, check_domain),
    )


def _check(flag: str, value: str, check: Callable[[str], T]) -> T:
    """Run one syntax check; a BadSyntax becomes ``--flag 'value': reason``."""
    try:
        return check(value)
    except BadSyntax as exc:
        shown = repr(value[:60]) + ("…" if len(value) > 60 else "")
        raise ConfigError(f"{flag} {shown}: {exc}") from None


def _check_ip(value: str) -> str:
    if not is_ip(value):
        raise BadSyntax("not an IP address")
    return value


def _check_counts(options: Options) -> None:
    if options.domains and len(options.domains) not in (1, len(options.servers)):
        raise ConfigError("--domain: give one for all servers or one per --server, in order")
    if options.api_urls and len(options.api_urls) not in (1, len(options.servers)):
        raise ConfigError("--api-url: give one (may hold {server}) or one per --server, in order")


def _secrets(options: Options, env: dict[str, str]) -> tuple[str | None, str | None, str | None]:
    """The credentials from the environment, registered with the redactor (with their users, so
    that every encoding of an AUTH argument is recognised)."""
    smtp_password = env.get("MAILAUDIT_SMTP_PASSWORD") or None
    api_user = env.get("MAILAUDIT_API_USER") or None
    api_password = env.get("MAILAUDIT_API_PASSWORD") or None
    if smtp_password and "\0" in smtp_password:
        raise ConfigError("MAILAUDIT_SMTP_PASSWORD holds a NUL character (RFC 4616 forbids it in AUTH PLAIN)")
    if smtp_password:
        register_secret(smtp_password, user=options.smtp_user)
    if api_password:
        register_secret(api_password, user=api_user)
    return smtp_password, api_user, api_password


def _inventory(options: Options) -> Inventory | None:
    """The inventory, when given (never together with --server)."""
    if options.inventory is None:
        return None
    if options.servers:
        raise ConfigError("give either --server or --inventory, not both")
    if options.domains or options.api_urls:
        raise ConfigError("--domain and --api-url are per server: put them in the --inventory file")
    return load_inventory(options.inventory, allow_http=options.api_allow_http)


def _shard(options: Options, servers: Sequence[T], name: Callable[[T], str]) -> tuple[T, ...]:
    """The servers of this run's shard (all of them without --shard)."""
    if options.shard is None:
        return tuple(servers)
    k, n = parse_shard(options.shard)
    return select_shard(servers, k, n, name=name)


def _targets(options: Options, hosts: tuple[str, ...], defaults: Target, resolver,
             dns_server: DnsServer | None) -> tuple[Target, ...]:
    """The --server targets, each with the command line's inputs."""
    targets = []
    for host in hosts:
        index = options.servers.index(host)
        api_url = _pick(options.api_urls, index)
        targets.append(dataclasses.replace(
            defaults,
            host=host,
            ip=_address_of(host, resolver, dns_server),
            domain=_pick(options.domains, index) or _domain_of(host),
            api_url=api_url.replace("{server}", host).rstrip("/") if api_url else None,
        ))
    return tuple(targets)


def _inventory_target(entry: ServerEntry, defaults: Target, options: Options, resolver,
                      dns_server: DnsServer | None, env: dict[str, str]) -> Target:
    """One inventory server: its own inputs where the file gives them, else the command line's."""
    found = credentials(entry, env)
    return dataclasses.replace(
        defaults,
        host=entry.server,
        ip=_address_of(entry.server, resolver, dns_server),
        domain=entry.domain or _domain_of(entry.server),
        api_url=entry.api_url.rstrip("/") if entry.api_url else None,
        smtp_user=entry.smtp_user or defaults.smtp_user,
        smtp_password=found.smtp_password or defaults.smtp_password,
        api_user=found.api_user or defaults.api_user,
        api_password=found.api_password or defaults.api_password,
        dkim_selectors=entry.dkim_selectors or defaults.dkim_selectors,
        tls_ports=entry.tls_ports or defaults.tls_ports,
        outbound_ips=entry.outbound_ips or defaults.outbound_ips,
        local_recipient=entry.local_recipient or defaults.local_recipient,
        tags=entry.tags,
    )


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
