"""The inventory (``--inventory FILE``): per-server inputs for a fleet, validated before any probe.

::

    defaults:                        # applied to every server; a server's own value wins
      api_url: "https://{server}"    # {server} becomes each server's name
      tls_ports: [25, 587, 465, 993]
      tags: [nightly]                # tags are united (defaults first), not replaced
    servers:
      mail.example.com:
        domain: example.com
        smtp_user: audit@example.com
        smtp_password_env: MX1_SMTP_PASSWORD   # the NAME of the variable, never the password
        api_user_env: MX1_API_USER
        api_password_env: MX1_API_PASSWORD
        dkim_selectors: [s1, s2]
        outbound_ips: [192.0.2.25]
        local_recipient: postmaster@example.com
        tags: [customer-a]
      mx2.example.com: {}

Secrets never appear in the file: ``*_env`` keys name environment variables; without them the
standard variables (``MAILAUDIT_SMTP_PASSWORD``, ``MAILAUDIT_API_USER``, ``MAILAUDIT_API_PASSWORD``)
are read. Every problem is one ``ConfigError`` line naming the file, the entry and the key.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mailaudit.errors import ConfigError
from mailaudit.redact import register_secret
from mailaudit.syntax import (
    BadSyntax,
    check_domain,
    check_local_part,
    check_mailbox,
    check_selector,
    check_server,
    check_url,
)
from mailaudit.yamlsafe import load_yaml

MAX_INVENTORY_BYTES = 5_000_000  # thousands of servers fit well below this
MAX_SERVERS = 10_000
STANDARD_ENV = {
    "smtp_password_env": "MAILAUDIT_SMTP_PASSWORD",
    "api_user_env": "MAILAUDIT_API_USER",
    "api_password_env": "MAILAUDIT_API_PASSWORD",
}
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}", re.ASCII)
_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", re.ASCII)
_SECRET_WORDS = ("password", "passwd", "secret", "token", "credential")
TOP_KEYS = ("defaults", "servers")


@dataclass(frozen=True)
class ServerEntry:
    """One server of the inventory, defaults applied. ``None``/empty means "not given": the
    command line's value (or the suite's default) applies."""

    server: str
    domain: str | None = None
    api_url: str | None = None  # with {server} already replaced
    api_user_env: str | None = None
    api_password_env: str | None = None
    smtp_user: str | None = None
    smtp_password_env: str | None = None
    dkim_selectors: tuple[str, ...] = ()
    tls_ports: tuple[int, ...] | None = None
    outbound_ips: tuple[str, ...] = ()
    local_recipient: str | None = None
    tags: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.server

    def env_name(self, key: str) -> str:
        """The environment variable read for ``key`` (``smtp_password_env``, ``api_user_env``,
        ``api_password_env``): the inventory's, else the standard one."""
        return getattr(self, key) or STANDARD_ENV[key]


@dataclass(frozen=True)
class Credentials:
    """One server's credentials, read from the environment (passwords hidden from repr)."""

    smtp_password: str | None = field(default=None, repr=False)
    api_user: str | None = None
    api_password: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Inventory:
    """The servers of an inventory file, in the file's order."""

    path: Path
    servers: tuple[ServerEntry, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """The server names, in the file's order."""
        return tuple(entry.server for entry in self.servers)

    def entry(self, server: str) -> ServerEntry:
        """The entry of one server (names compare without regard to case)."""
        for candidate in self.servers:
            if candidate.server.casefold() == server.casefold():
                return candidate
        raise KeyError(server)


def load_inventory(path: Path | str, *, allow_http: bool = False) -> Inventory:
    """Read and check an inventory file; raise ConfigError (one line) on the first problem.

    ``allow_http`` admits ``http://`` API URLs (the ``--api-allow-http`` option)."""
    path = Path(path)
    what = f"--inventory {path}"
    data = load_yaml(path, what, max_bytes=MAX_INVENTORY_BYTES)
    return Inventory(path, parse_inventory(data, what, allow_http=allow_http))


def parse_inventory(data: Any, what: str = "--inventory", *, allow_http: bool = False) -> tuple[ServerEntry, ...]:
    """Check an inventory's parsed YAML and build one entry per server, defaults applied."""
    if not isinstance(data, dict):
        raise ConfigError(f"{what}: expected a mapping with 'servers:' (and optionally 'defaults:')")
    unknown = [k for k in data if k not in TOP_KEYS]
    if unknown:
        raise ConfigError(f"{what}: unknown top-level key {_shown_key(unknown[0])} (known: {', '.join(TOP_KEYS)})")
    schemes = ("https", "http") if allow_http else ("https",)
    defaults = _fields(data.get("defaults") or {}, f"{what}: defaults", schemes)
    servers = data.get("servers")
    if not isinstance(servers, dict) or not servers:
        raise ConfigError(f"{what}: 'servers' must map each server name to its settings (at least one)")
    if len(servers) > MAX_SERVERS:
        raise ConfigError(f"{what}: {len(servers)} servers; at most {MAX_SERVERS} per file")
    entries: list[ServerEntry] = []
    seen: dict[str, str] = {}
    for name, raw in servers.items():
        server = _server_name(name, what)
        where = f"{what}: server {server!r}"
        if server.casefold() in seen:
            raise ConfigError(f"{where}: listed twice (also as {seen[server.casefold()]!r})")
        seen[server.casefold()] = server
        own = _fields(raw if raw is not None else {}, where, schemes)
        entries.append(_entry(server, defaults, own))
    return tuple(entries)


def credentials(entry: ServerEntry, env: Mapping[str, str] | None = None) -> Credentials:
    """Read one server's credentials from the environment and register the passwords with the
    redactor. A variable the inventory names explicitly must be set (ConfigError otherwise); the
    standard variables may be unset (the checks that need them then skip)."""
    env = os.environ if env is None else env
    values: dict[str, str | None] = {}
    for key in STANDARD_ENV:
        name = entry.env_name(key)
        value = env.get(name) or None
        if value is None and getattr(entry, key):
            raise ConfigError(f"--inventory: server {entry.server!r}: {key} names {name}, which is not set "
                              "in the environment")
        values[key] = value
    found = Credentials(values["smtp_password_env"], values["api_user_env"], values["api_password_env"])
    if found.smtp_password and "\0" in found.smtp_password:
        raise ConfigError(f"--inventory: server {entry.server!r}: {entry.env_name('smtp_password_env')} holds a "
                          "NUL character (RFC 4616 forbids it in AUTH PLAIN)")
    if found.smtp_password:
        register_secret(found.smtp_password, user=entry.smtp_user)
    if found.api_password:
        register_secret(found.api_password, user=found.api_user)
    return found


# --- one entry ------------------------------------------------------------------------------------

def _entry(server: str, defaults: dict[str, Any], own: dict[str, Any]) -> ServerEntry:
    """Defaults, then the server's own values; tags united; {server} in the API URL replaced."""
    merged = {**defaults, **own}
    merged["tags"] = tuple(dict.fromkeys((*defaults.get("tags", ()), *own.get("tags", ()))))
    if merged.get("api_url"):
        merged["api_url"] = merged["api_url"].replace("{server}", server).rstrip("/")
    return ServerEntry(server=server, **merged)


def _server_name(name: object, what: str) -> str:
    if not isinstance(name, str):
        raise ConfigError(f"{what}: server name {name!r} must be a host name or an IP address (text)")
    try:
        return check_server(name.strip())
    except BadSyntax as exc:
        raise ConfigError(f"{what}: server {_shown(name)}: {exc}") from None


def _fields(raw: object, where: str, schemes: tuple[str, ...]) -> dict[str, Any]:
    """Check every key of a server's (or the defaults') mapping; return the checked values."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping of settings")
    checks = _checks(schemes)
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in checks:
            raise ConfigError(f"{where}: {_unknown_key(key, checks)}")
        if value is None:
            continue
        try:
            values[key] = checks[key](value)
        except BadSyntax as exc:
            raise ConfigError(f"{where}: key {key!r}: {exc}") from None
    return values


def _checks(schemes: tuple[str, ...]) -> dict[str, Callable[[Any], Any]]:
    return {
        "domain": lambda v: check_domain(_text(v)),
        "api_url": lambda v: check_url(_text(v), schemes),
        "api_user_env": _env_name,
        "api_password_env": _env_name,
        "smtp_user": _smtp_user,
        "smtp_password_env": _env_name,
        "dkim_selectors": lambda v: _list(v, lambda s: check_selector(_text(s)), "selectors"),
        "tls_ports": _ports,
        "outbound_ips": lambda v: _list(v, _ip, "IP addresses"),
        "local_recipient": lambda v: check_mailbox(_text(v)),
        "tags": lambda v: _list(v, _tag, "tags"),
    }


def _unknown_key(key: object, checks: Mapping[str, object]) -> str:
    shown = _shown_key(key)
    if isinstance(key, str) and any(word in key.lower() for word in _SECRET_WORDS):
        return (f"unknown key {shown}: secrets never go into the inventory; name the environment variable "
                "that holds it (smtp_password_env, api_user_env, api_password_env)")
    return f"unknown key {shown} (known: {', '.join(checks)})"


# --- value checks (raise BadSyntax; the caller names the entry and key) -----------------------------

def _text(value: object) -> str:
    if not isinstance(value, str):
        raise BadSyntax(f"expected text, got {_type_name(value)}")
    return value.strip()


def _env_name(value: object) -> str:
    """The name of an environment variable. The value itself is never echoed: a user may have put
    the secret here by mistake."""
    if not isinstance(value, str) or not _ENV_NAME.fullmatch(value):
        raise BadSyntax("must name an environment variable (letters, digits, '_'; not starting with a digit); "
                        "the secret itself never goes into the inventory")
    return value


def _smtp_user(value: object) -> str:
    text = _text(value)
    return check_mailbox(text) if "@" in text else check_local_part(text)


def _list(value: object, check: Callable[[Any], Any], what: str) -> tuple[Any, ...]:
    if not isinstance(value, list):
        raise BadSyntax(f"expected a list of {what} (e.g. [a, b]), got {_type_name(value)}")
    items = tuple(check(item) for item in value)
    doubled = next((item for i, item in enumerate(items) if item in items[:i]), None)
    if doubled is not None:
        raise BadSyntax(f"{doubled!r} listed twice")
    return items


def _ports(value: object) -> tuple[int, ...]:
    def port(item: object) -> int:
        if isinstance(item, bool) or not isinstance(item, int):
            raise BadSyntax(f"port {_shown(item)} is {_type_name(item)}, not a number")
        if not 0 < item < 65536:
            raise BadSyntax(f"port {item} out of range 1-65535")
        return item
    ports = _list(value, port, "ports")
    if not ports:
        raise BadSyntax("empty list of ports (leave the key out to use the policy's ports)")
    return ports


def _ip(value: object) -> str:
    text = _text(value)
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise BadSyntax(f"{_shown(text)} is not an IP address") from None


def _tag(value: object) -> str:
    text = _text(value)
    if not _TAG.fullmatch(text):
        raise BadSyntax(f"tag {_shown(text)} may hold only letters, digits, '_', '.', '-' (at most 64)")
    return text


def _type_name(value: object) -> str:
    return {dict: "a mapping", list: "a list", str: "text", bool: "true/false", int: "a number",
            float: "a number"}.get(type(value), type(value).__name__)


def _shown(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text[:limit] + ("…" if len(text) > limit else "")


def _shown_key(key: object) -> str:
    return _shown(str(key))
