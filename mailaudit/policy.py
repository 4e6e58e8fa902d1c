"""The policy model: thresholds with citations, loaded from YAML and validated.

Every leaf in a policy file is ``{value: ..., source: "..."}``: the threshold and where it comes
from. A file may start with ``extends: baseline.yaml`` and override single leaves. The sections
are frozen dataclasses; a key the dataclass does not know, a missing key or a value of the wrong
type is a ConfigError naming the key.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mailaudit.errors import ConfigError
from mailaudit.yamlsafe import load_yaml


@dataclass(frozen=True)
class SmtpPolicy:
    """Thresholds for the SMTP probes."""

    ports: tuple[int, ...]
    submission_ports: tuple[int, ...]
    implicit_tls_ports: tuple[int, ...]
    relay_recipient_domain: str
    connect_timeout_s: float
    command_timeout_s: float
    server_deadline_s: float  # all SMTP dialogues with one server together; then BudgetExceeded errors
    max_connections_per_server: int  # SMTP connections open at once per server (probes/smtp.py ConnectionSlots)
    harvest_attempts: int
    bruteforce_attempts: int
    inbound_port: int  # where MX traffic arrives: catch-all, VRFY, local spoof, harvest, banner host name
    auth_port: int  # where authenticated submission is checked: AUTH-MATCH, brute force

    def __post_init__(self) -> None:
        for key in ("connect_timeout_s", "command_timeout_s", "server_deadline_s"):
            if not getattr(self, key) > 0:
                raise ConfigError(f"policy smtp.{key}: must be more than 0 seconds")
        for key in ("max_connections_per_server", "harvest_attempts", "bruteforce_attempts"):
            if getattr(self, key) < 1:
                raise ConfigError(f"policy smtp.{key}: must be at least 1")


@dataclass(frozen=True)
class DnsblZone:
    """One DNS blocklist and how to read its answers (RFC 5782; per-list return codes)."""

    zone: str
    listed: tuple[str, ...] = ("127.0.0.0/8",)  # answer networks that mean "listed"
    errors: tuple[str, ...] = ()  # answer networks that mean "query refused/failed", never a listing
    note: str = ""


@dataclass(frozen=True)
class DnsPolicy:
    """Thresholds for the DNS probes (SPF, DMARC, DKIM, PTR, blocklists, MTA-STS, DANE)."""

    timeout_s: float
    retries: int
    spf_allowed_all: tuple[str, ...]
    spf_max_lookups: int
    spf_max_void_lookups: int
    dmarc_min_policy: str
    dmarc_min_pct: int
    dkim_selectors: tuple[str, ...]
    dkim_min_rsa_bits: int
    dnsbl_zones: tuple[DnsblZone, ...]
    mta_sts_mode: str
    https_timeout_s: float
    starttls_timeout_s: float
    spf_max_queries: int  # hard cap on the DNS queries of one SPF walk (and of one pyspf check)
    server_deadline_s: float  # all DNS work for one server; past it the remaining DNS checks are errors


TLS_STARTTLS_PROTOCOLS = ("smtp", "imap", "pop3")
TLS_SUITE_CLASSES = ("NULL", "ANONYMOUS", "EXPORT", "RC4", "DES", "3DES", "64BIT_BLOCK",
                     "NO_FORWARD_SECRECY")
TLS_VERSIONS = ("SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")


@dataclass(frozen=True)
class TlsPort:
    """One service port for the TLS checks: its number, the service, and how TLS starts on it."""

    port: int
    service: str
    starttls: str | None = None  # "smtp", "imap" or "pop3"; None = implicit TLS from the first byte

    def __post_init__(self) -> None:
        if self.starttls is not None and self.starttls not in TLS_STARTTLS_PROTOCOLS:
            raise ConfigError(f"policy tls.ports: port {self.port}: starttls must be one of "
                              f"{', '.join(TLS_STARTTLS_PROTOCOLS)} (or null for implicit TLS)")
        if not 0 < self.port < 65536:
            raise ConfigError(f"policy tls.ports: port {self.port} out of range")


@dataclass(frozen=True)
class TlsPolicy:
    """Thresholds for the TLS scans (sslyze) of every service port."""

    ports: tuple[TlsPort, ...]
    expiry_warning_days: int
    min_rsa_key_bits: int
    min_ec_key_bits: int
    forbidden_signature_hashes: tuple[str, ...]
    forbidden_suite_classes: tuple[str, ...]
    forward_secrecy_versions: tuple[str, ...]
    tls13_missing_fails: bool
    network_timeout_s: int
    network_retries: int
    connections_per_port: int
    concurrent_ports: int
    scan_deadline_s: int
    command_retries: int

    def __post_init__(self) -> None:
        unknown = set(self.forbidden_suite_classes) - set(TLS_SUITE_CLASSES)
        if unknown:
            raise ConfigError(f"policy tls.forbidden_suite_classes: unknown class {sorted(unknown)[0]!r} "
                              f"(known: {', '.join(TLS_SUITE_CLASSES)})")
        bad = set(self.forward_secrecy_versions) - set(TLS_VERSIONS)
        if bad:
            raise ConfigError(f"policy tls.forward_secrecy_versions: unknown version {sorted(bad)[0]!r}")
        if len({p.port for p in self.ports}) != len(self.ports):
            raise ConfigError("policy tls.ports: a port is listed twice")

    def port_entry(self, port: int) -> TlsPort:
        """The policy's entry for a port; a port it does not list is implicit TLS (e.g. 10465)."""
        return next((p for p in self.ports if p.port == port), TlsPort(port, "tls"))


@dataclass(frozen=True)
class IdsRuleLimit:
    """Limits one SmarterMail IDS rule type must meet (a record inside api.ids_rules)."""

    max_threshold: int
    min_time_frame_minutes: int
    min_block_minutes: int


@dataclass(frozen=True)
class ApiPolicy:
    """Thresholds for the SmarterMail admin API checks (API-*, XCHK-*), and the API probe's bounds."""

    request_timeout_s: float  # one wait for the server (connect, each read)
    retries: int
    call_deadline_s: float  # one API call in total (retries and a trickling answer included)
    server_deadline_s: float  # every API call to one server together; then BudgetExceeded errors
    max_response_bytes: int  # a larger answer is cut off while streaming (never held whole)
    max_json_depth: int  # deeper nesting is refused before parsing (no RecursionError)
    max_domains: int  # domains read per server; beyond it an evenly spread sample, stated as such
    min_build: int
    forbidden_tls_versions: tuple[str, ...]
    bounce_restrictions_allowed: tuple[str, ...]
    password_min_length: int
    password_required_rules: tuple[str, ...]
    throttle_max_messages_per_hour: int
    throttle_require_bandwidth: bool
    throttle_max_bandwidth_mb_per_hour: int
    throttle_actions_allowed: tuple[str, ...]
    ids_rules: dict[str, IdsRuleLimit]
    system_events_required: tuple[str, ...]
    max_lists_per_domain: int
    list_posting_allowed: tuple[str, ...]
    av_command_lines_allowed: tuple[str, ...]
    smtp_auth_bypass_allowed: tuple[str, ...]
    spool_max_messages: int
    outbound_block_required: bool  # API-OUTBOUND-SPAM: the site's choice ([E1] leaves it off)
    outbound_block_max_threshold: int  # highest outgoing block weight accepted; 0 = not judged
    domain_2fa_required: bool  # API-DOMAIN-2FA: skipped when the site does not require it

    def __post_init__(self) -> None:
        for key in ("request_timeout_s", "call_deadline_s", "server_deadline_s"):
            if not getattr(self, key) > 0:
                raise ConfigError(f"policy api.{key}: must be more than 0 seconds")
        for key in ("max_response_bytes", "max_json_depth", "max_domains"):
            if getattr(self, key) < 1:
                raise ConfigError(f"policy api.{key}: must be at least 1")
        if self.retries < 0:
            raise ConfigError("policy api.retries: must be 0 or more")


@dataclass(frozen=True)
class RunPolicy:
    """Bounds of a whole run (all servers, all families)."""

    deadline_s: float  # after it, tests not yet run are errors "run deadline reached"; the reports are written
    max_connections_per_server: int  # simultaneous connections to one server, all families together
    max_servers_at_once: int  # servers (IPs) probed at the same time in a fleet run
    max_connections_total: int  # simultaneous connections of the whole run, all servers together (the TLS scan)

    def __post_init__(self) -> None:
        for key in ("max_connections_per_server", "max_connections_total"):
            if getattr(self, key) < 1:
                raise ConfigError(f"policy run.{key}: must be at least 1")


@dataclass(frozen=True)
class Policy:
    """A whole policy profile: one section per probe family, plus where each value came from."""

    name: str
    smtp: SmtpPolicy
    dns: DnsPolicy
    tls: TlsPolicy
    api: ApiPolicy
    run: RunPolicy
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.tls_connections_per_server < self.tls.connections_per_port:
            raise ConfigError(
                f"policy {self.name}: run.max_connections_per_server ({self.run.max_connections_per_server}) leaves "
                f"{self.tls_connections_per_server} connections for the TLS scan beside SMTP "
                f"(smtp.max_connections_per_server) and the API (1); tls.connections_per_port needs "
                f"{self.tls.connections_per_port}")

    @property
    def tls_connections_per_server(self) -> int:
        """The TLS scan's share of a server's connections: the families probe a server side by side,
        so the TLS scan gets what SMTP's slots and the API's one session leave of the run's limit."""
        return self.run.max_connections_per_server - self.smtp.max_connections_per_server - 1

    def source_of(self, dotted_key: str) -> str:
        """The citation for a leaf, e.g. ``source_of("smtp.harvest_attempts")``."""
        return self.sources.get(dotted_key, "")

    def value_of(self, dotted_key: str) -> Any:
        """The value of a leaf, e.g. ``value_of("smtp.harvest_attempts")``; KeyError if unknown."""
        if dotted_key not in self.sources:
            raise KeyError(dotted_key)
        value: Any = self
        for part in dotted_key.split("."):
            value = getattr(value, part)
        return value


def load_policy(path: Path) -> Policy:
    """Load, merge (``extends``) and validate a policy file; raise ConfigError with one line."""
    raw = _read_merged(Path(path), seen=())
    sources: dict[str, str] = {}
    name = raw.pop("name", Path(path).stem)
    if not isinstance(name, str):
        raise ConfigError(f"policy {path}: 'name' must be a string")
    kwargs = {}
    for f in dataclasses.fields(Policy):
        if f.name in ("name", "sources"):
            continue
        if f.name not in raw:
            raise ConfigError(f"policy {path}: missing section '{f.name}'")
        kwargs[f.name] = _build(_hints(Policy)[f.name], raw.pop(f.name), f.name, sources, path)
    if raw:
        raise ConfigError(f"policy {path}: unknown section '{sorted(raw, key=str)[0]}'")
    return Policy(name=name, sources=sources, **kwargs)


MAX_NUMBER = 1e9  # no threshold is negative or larger (the largest, a size in bytes, is 8e6)
MAX_EXTENDS = 8  # policy files in one ``extends`` chain (strict -> baseline is 2)


def _read_merged(path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    """Read a YAML policy (safely: no aliases, size and depth capped), resolving ``extends``
    relative to the file."""
    if path.resolve() in seen:
        raise ConfigError(f"policy {path}: 'extends' loops back to itself")
    if len(seen) >= MAX_EXTENDS:
        raise ConfigError(f"policy {path}: 'extends' chain longer than {MAX_EXTENDS} files")
    data = load_yaml(path, f"policy {path}")
    if not isinstance(data, dict):
        raise ConfigError(f"policy {path}: expected a mapping of sections")
    base_name = data.pop("extends", None)
    if base_name is None:
        return data
    if not isinstance(base_name, str) or not base_name.strip():
        raise ConfigError(f"policy {path}: 'extends' must name a policy file")
    base = _read_merged((path.parent / base_name).resolve(), (*seen, path.resolve()))
    return _merge(base, data)


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge override into base, section by section, leaf by leaf."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict) and "value" not in value:
            merged[key] = _merge(base[key], value)
        else:
            merged[key] = value
    return merged


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _build(cls: type, raw: Any, where: str, sources: dict[str, str], path: Path) -> Any:
    """Build a section dataclass from its mapping of cited leaves."""
    if not isinstance(raw, dict):
        raise ConfigError(f"policy {path}: '{where}' must be a mapping")
    raw = dict(raw)
    values = {}
    for f in dataclasses.fields(cls):
        key = f"{where}.{f.name}"
        if f.name not in raw:
            if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
                continue
            raise ConfigError(f"policy {path}: missing key '{key}'")
        leaf = raw.pop(f.name)
        if not isinstance(leaf, dict) or "value" not in leaf or not leaf.get("source"):
            raise ConfigError(f"policy {path}: '{key}' must be {{value: ..., source: '...'}}")
        extra = set(leaf) - {"value", "source", "note"}
        if extra:
            raise ConfigError(f"policy {path}: '{key}' has unknown field '{sorted(extra, key=str)[0]}'")
        for text_field in ("source", "note"):
            if not isinstance(leaf.get(text_field, ""), str):
                raise ConfigError(f"policy {path}: '{key}.{text_field}' must be text")
        sources[key] = leaf["source"]
        values[f.name] = _coerce(_hints(cls)[f.name], leaf["value"], key, path)
    if raw:
        raise ConfigError(f"policy {path}: unknown key '{where}.{sorted(raw, key=str)[0]}'")
    return cls(**values)


def _coerce(kind: Any, value: Any, key: str, path: Path) -> Any:
    """Check a leaf value against its annotated type (and build nested records)."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        kind = next(o for o in options if o is not type(None))
        origin = typing.get_origin(kind)
    if origin is tuple:
        item_kind = typing.get_args(kind)[0]
        if not isinstance(value, list):
            raise ConfigError(f"policy {path}: '{key}' must be a list")
        return tuple(_coerce(item_kind, item, f"{key}[{i}]", path) for i, item in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"policy {path}: '{key}' must be a mapping")
        key_kind, item_kind = typing.get_args(kind)
        return {_coerce(key_kind, k, key, path): _coerce(item_kind, v, f"{key}.{k}", path)
                for k, v in value.items()}
    if dataclasses.is_dataclass(kind):
        return _record(kind, value, key, path)
    return _scalar(kind, value, key, path)


def _record(kind: type, value: Any, key: str, path: Path) -> Any:
    """A nested record inside a list leaf (plain mapping, no per-field citations)."""
    if not isinstance(value, dict):
        raise ConfigError(f"policy {path}: '{key}' must be a mapping")
    names = {f.name for f in dataclasses.fields(kind)}
    unknown = set(value) - names
    if unknown:
        raise ConfigError(f"policy {path}: unknown key '{key}.{sorted(unknown, key=str)[0]}'")
    hints = _hints(kind)
    built = {k: _coerce(hints[k], v, f"{key}.{k}", path) for k, v in value.items()}
    try:
        return kind(**built)
    except TypeError:
        missing = sorted(n for n in names if n not in value)
        raise ConfigError(f"policy {path}: '{key}' lacks '{missing[0] if missing else '?'}'") from None


def _scalar(kind: type, value: Any, key: str, path: Path) -> Any:
    """int, float, str, bool — with bool never passing for a number or the other way round."""
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, bool):
        raise ConfigError(f"policy {path}: '{key}' must be int, not bool")
    if not isinstance(value, kind):
        raise ConfigError(
            f"policy {path}: '{key}' must be {kind.__name__}, not {type(value).__name__}"
        )
    if kind in (int, float) and not ((kind is int or math.isfinite(value)) and 0 <= value <= MAX_NUMBER):
        shown = value if abs(value) < 10**12 else "a number too large to show"
        raise ConfigError(f"policy {path}: '{key}' must be a finite number from 0 to {MAX_NUMBER:g}, not {shown}")
    return value
