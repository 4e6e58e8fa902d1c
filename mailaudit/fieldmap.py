"""The SmarterMail API field map (fieldmap.yaml) and reading settings through it.

The map names every endpoint and JSON field the suite reads, each marked *seen* (a source of
smartermail-api.md shows it) or *assumed* (no source does). The snapshot the API probe takes is
stored per endpoint; :meth:`ApiSnapshot.read` turns one field of it into a :class:`Reading`:
a normalised value, or why it could not be read (404 endpoint, missing field, unmapped value,
endpoint error). Pure data handling: no I/O except loading the YAML file.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from mailaudit.errors import ApiError, ConfigError

FIELDMAP_FILE = Path(__file__).with_name("fieldmap.yaml")
STATUSES = ("seen", "assumed")
SCOPES = ("public", "sysadmin", "sysadmin_domain", "domain")
TYPES = ("bool", "int", "str", "enum", "rule", "intmap", "list", "raw")
AUTH_FIELDS = (
    "username", "password", "client_id", "refresh_body_token", "access_token", "refresh_token",
    "access_expiration", "refresh_expiration", "is_admin", "is_domain_admin",
    "change_password_needed", "password_expired", "success", "result_code", "message",
    "impersonate_access_token", "impersonate_refresh_token", "impersonate_expiration",
)
_MISSING = object()


@dataclass(frozen=True)
class Endpoint:
    """One API call the suite makes: method, path template, token scope, provenance."""

    key: str
    method: str
    path: str
    scope: str
    status: str
    source: str
    body: Mapping[str, Any] | None = None

    def path_for(self, domain: str | None = None) -> str:
        """The request path, with ``{domain}`` filled in."""
        return self.path.replace("{domain}", domain) if domain is not None else self.path

    def describe(self, domain: str | None = None) -> str:
        """``GET /api/v1/...`` for messages and evidence."""
        return f"{self.method} {self.path_for(domain)}"

    @property
    def per_domain(self) -> bool:
        """True when the endpoint is read once per hosted domain."""
        return self.scope in ("sysadmin_domain", "domain")


@dataclass(frozen=True)
class FieldSpec:
    """One JSON field (or list item sub-field) and how to normalise its value."""

    key: str
    json: str
    type: str
    endpoint: str = ""
    status: str = "assumed"
    source: str = ""
    ui: str = ""
    values: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    values_status: str = ""
    fallback: str | None = None
    item: Mapping[str, FieldSpec] = field(default_factory=dict)

    def manual(self, domain: str | None = None) -> str:
        """The manual-check place in the web interface, for this domain."""
        return self.ui.replace("{domain}", domain) if domain else self.ui


@dataclass(frozen=True)
class AuthMap:
    """The authentication endpoints and the JSON names of their request and response fields."""

    login: Endpoint
    refresh: Endpoint
    logout: Endpoint
    manage_domain: Endpoint
    fields: Mapping[str, str]
    two_factor_prefix: str


@dataclass(frozen=True)
class FieldMap:
    """The whole map: auth, endpoints, fields; where it was loaded from."""

    path: Path
    auth: AuthMap
    endpoints: Mapping[str, Endpoint]
    fields: Mapping[str, FieldSpec]

    def endpoint_of(self, field_key: str) -> Endpoint:
        """The endpoint a field is read from."""
        return self.endpoints[self.fields[field_key].endpoint]

    def assumed(self) -> tuple[str, ...]:
        """Keys of fields and endpoints still marked assumed (a site should verify them)."""
        keys = [f"endpoint {k}" for k, e in self.endpoints.items() if e.status == "assumed"]
        keys += [f"field {k}" for k, f in self.fields.items() if f.status == "assumed"]
        keys += [f"values of {k}" for k, f in self.fields.items()
                 if f.values_status == "assumed" and f.status != "assumed"]
        return tuple(keys)


# --- loading ----------------------------------------------------------------------------------

def load_fieldmap(path: Path | str | None = None) -> FieldMap:
    """Load and validate a field map; raise ConfigError naming the bad entry."""
    path = Path(path) if path else FIELDMAP_FILE
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"--api-fieldmap {path}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError:
        raise ConfigError(f"--api-fieldmap {path}: malformed YAML") from None
    if not isinstance(raw, dict) or not all(k in raw for k in ("auth", "endpoints", "fields")):
        raise ConfigError(f"field map {path}: needs the sections auth, endpoints, fields")
    endpoints = {k: _endpoint(k, v, path) for k, v in _mapping(raw["endpoints"], "endpoints", path).items()}
    fields = {k: _field(k, v, path, endpoints) for k, v in _mapping(raw["fields"], "fields", path).items()}
    return FieldMap(path=path, auth=_auth(raw["auth"], path), endpoints=endpoints, fields=fields)


def _mapping(value: Any, where: str, path: Path) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"field map {path}: '{where}' must be a mapping")
    return value


def _provenance(entry: dict[str, Any], where: str, path: Path) -> tuple[str, str]:
    status, source = entry.get("status"), entry.get("source")
    if status not in STATUSES:
        raise ConfigError(f"field map {path}: '{where}.status' must be seen or assumed")
    if not isinstance(source, str) or not source.strip():
        raise ConfigError(f"field map {path}: '{where}.source' must name its source tag")
    return status, source


def _endpoint(key: str, entry: Any, path: Path, scope_required: bool = True) -> Endpoint:
    entry = _mapping(entry, f"endpoints.{key}", path)
    status, source = _provenance(entry, key, path)
    method = str(entry.get("method", "GET")).upper()
    route = entry.get("path")
    if method not in ("GET", "POST") or not isinstance(route, str) or not route.startswith("/"):
        raise ConfigError(f"field map {path}: '{key}' needs method GET|POST and a path starting with /")
    scope = entry.get("scope", "sysadmin")
    if scope_required and scope not in SCOPES:
        raise ConfigError(f"field map {path}: '{key}.scope' must be one of {', '.join(SCOPES)}")
    if scope == "sysadmin_domain" and "{domain}" not in route:
        raise ConfigError(f"field map {path}: '{key}' has scope sysadmin_domain but no {{domain}} in its path")
    body = entry.get("body")
    if body is not None and not isinstance(body, dict):
        raise ConfigError(f"field map {path}: '{key}.body' must be a mapping")
    return Endpoint(key, method, route, scope, status, source, body)


def _auth(entry: Any, path: Path) -> AuthMap:
    entry = _mapping(entry, "auth", path)
    names = _mapping(entry.get("fields"), "auth.fields", path)
    missing = [k for k in AUTH_FIELDS if not isinstance(names.get(k), str)]
    if missing:
        raise ConfigError(f"field map {path}: 'auth.fields.{missing[0]}' is missing")
    calls = {k: _endpoint(k, entry.get(k), path, scope_required=False)
             for k in ("login", "refresh", "logout", "manage_domain")}
    return AuthMap(**calls, fields=dict(names),
                   two_factor_prefix=str(entry.get("two_factor_message_prefix", "TWO_FACTOR_REQUIRED")))


def _field(key: str, entry: Any, path: Path, endpoints: Mapping[str, Endpoint]) -> FieldSpec:
    entry = _mapping(entry, f"fields.{key}", path)
    status, source = _provenance(entry, key, path)
    if entry.get("endpoint") not in endpoints:
        raise ConfigError(f"field map {path}: '{key}.endpoint' names no endpoint of the map")
    if not isinstance(entry.get("ui"), str) or not entry["ui"].strip():
        raise ConfigError(f"field map {path}: '{key}.ui' (the manual-check place) is required")
    spec = _spec(key, entry, path)
    return FieldSpec(**{**spec.__dict__, "endpoint": entry["endpoint"], "status": status,
                        "source": source, "ui": entry["ui"]})


def _spec(key: str, entry: dict[str, Any], path: Path) -> FieldSpec:
    """The value part of a field (also used for list item sub-fields)."""
    kind, json_path = entry.get("type"), entry.get("json")
    if kind not in TYPES or not isinstance(json_path, str) or not json_path:
        raise ConfigError(f"field map {path}: '{key}' needs json (a dotted path) and type ({', '.join(TYPES)})")
    values = entry.get("values") or {}
    if kind == "enum" and (not isinstance(values, dict) or not values):
        raise ConfigError(f"field map {path}: '{key}' is an enum and needs values")
    item = entry.get("item") or {}
    if kind == "list" and not isinstance(item, dict):
        raise ConfigError(f"field map {path}: '{key}.item' must be a mapping of sub-fields")
    return FieldSpec(
        key=key, json=json_path, type=kind,
        values={name: tuple(raw if isinstance(raw, list) else [raw]) for name, raw in values.items()},
        values_status=str(entry.get("values_status", "")),
        fallback=entry.get("fallback"),
        item={name: _spec(f"{key}.item.{name}", _mapping(sub, f"{key}.item.{name}", path), path)
              for name, sub in item.items()},
    )


# --- readings ---------------------------------------------------------------------------------

class ReadState(StrEnum):
    """Whether a field could be read, and if not, why."""

    OK = "ok"
    MISSING = "missing"        # the endpoint answered 404: the build lacks it
    ABSENT = "absent"          # the endpoint answered, the field is not in the response
    UNMAPPED = "unmapped"      # present, but its value is not one the map knows
    ERROR = "error"            # the endpoint could not be read (5xx, timeout, malformed JSON)


@dataclass(frozen=True)
class EndpointResult:
    """What one endpoint call gave: a JSON body, a 404, or an error line."""

    request: str
    state: ReadState
    body: Any = None
    detail: str = ""


@dataclass(frozen=True)
class Reading:
    """One field read from the snapshot, with provenance and the manual-check place."""

    key: str
    state: ReadState
    value: Any = None
    raw: Any = None
    request: str = ""
    json: str = ""
    status: str = "assumed"
    source: str = ""
    manual: str = ""
    detail: str = ""
    domain: str | None = None
    kind: str = ""

    @property
    def ok(self) -> bool:
        """True when the value was read and normalised."""
        return self.state is ReadState.OK

    def evidence(self) -> str:
        """One evidence line: request, field, value and provenance (never a secret)."""
        where = f"[{self.domain}] " if self.domain else ""
        if self.state is ReadState.OK and self.kind == "enum":
            shown = f"{_shown(self.raw)} ({self.value})"
        elif self.state is ReadState.OK and self.kind in ("list", "rule", "intmap"):
            shown = _shown(list(self.value) if self.kind == "list" else self.value)
        elif self.state in (ReadState.OK, ReadState.UNMAPPED):
            shown = _shown(self.raw)
        else:
            shown = self.detail
        return (f"{where}{self.request} -> {self.json} = {shown} "
                f"({self.status}; source {self.source})")

    def why_unreadable(self) -> str:
        """The reason this reading is not usable, for a skip or inconclusive message."""
        where = f" for {self.domain}" if self.domain else ""
        return f"{self.key}{where}: {self.detail}; check manually: {self.manual}"


def _shown(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 300 else text[:300] + "..."


@dataclass(frozen=True)
class ApiSnapshot:
    """Every endpoint of the field map as read once from one server, plus the login facts."""

    server: str
    base_url: str
    fieldmap: FieldMap
    results: Mapping[tuple[str, str | None], EndpointResult]
    domains: tuple[str, ...]
    user: str
    tls_verified: bool = True

    def result(self, endpoint_key: str, domain: str | None = None) -> EndpointResult:
        """The stored result of an endpoint (for a per-domain endpoint, of that domain)."""
        endpoint = self.fieldmap.endpoints[endpoint_key]
        key = (endpoint_key, domain if endpoint.per_domain else None)
        found = self.results.get(key)
        if found is None:
            return EndpointResult(endpoint.describe(domain), ReadState.ERROR,
                                  detail="not read in this snapshot")
        return found

    def read(self, field_key: str, domain: str | None = None) -> Reading:
        """Read one field; raise ApiError when its endpoint failed (the test becomes an error)."""
        spec = self.fieldmap.fields[field_key]
        endpoint = self.fieldmap.endpoints[spec.endpoint]
        result = self.result(spec.endpoint, domain)
        base = dict(key=field_key, request=result.request or endpoint.describe(domain), json=spec.json,
                    status=spec.status, source=spec.source, manual=spec.manual(domain),
                    domain=domain if endpoint.per_domain else None)
        if result.state is ReadState.ERROR:
            raise ApiError(f"{self.base_url}: {result.request}: {result.detail}")
        if result.state is ReadState.MISSING:
            return Reading(state=ReadState.MISSING, detail=f"{result.request} answered 404 "
                           f"(this build lacks the endpoint; field map entry {spec.endpoint!r} "
                           f"is {endpoint.status})", **base)
        return read_value(spec, result.body, base)


def read_value(spec: FieldSpec, body: Any, base: dict[str, Any]) -> Reading:
    """Find a field (or its fallback) in a JSON body and normalise it."""
    raw = dig(body, spec.json)
    json_used = spec.json
    if (raw is _MISSING or raw is None) and spec.fallback:
        raw, json_used = dig(body, spec.fallback), spec.fallback
    base = {**base, "json": json_used, "kind": spec.type}
    if raw is _MISSING:
        return Reading(state=ReadState.ABSENT, detail=f"the response has no field {spec.json!r} "
                       f"(field map entry is {spec.status})", **base)
    try:
        value = normalise(spec, raw)
    except ValueError as exc:
        return Reading(state=ReadState.UNMAPPED, raw=raw, detail=str(exc), **base)
    return Reading(state=ReadState.OK, value=value, raw=raw, **base)


def dig(body: Any, dotted: str) -> Any:
    """Follow a dotted path through nested objects; the _MISSING sentinel when absent."""
    current = body
    for part in dotted.split("."):
        if not isinstance(current, dict) or part not in current:
            return _MISSING
        current = current[part]
    return current


def normalise(spec: FieldSpec, raw: Any) -> Any:
    """Turn a raw JSON value into the field's type; ValueError when it does not fit."""
    kind = spec.type
    if kind == "raw":
        return copy.deepcopy(raw)
    if raw is None:
        raise ValueError(f"{spec.json} is null")
    converter = _CONVERTERS.get(kind)
    if converter is not None:
        return converter(spec, raw)
    raise ValueError(f"unknown type {kind}")


def _bool(spec: FieldSpec, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
        return raw.strip().lower() == "true"     # [C6]: some booleans arrive as "True"
    raise ValueError(f"{spec.json} = {raw!r} is not a boolean")


def _int(spec: FieldSpec, raw: Any) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lstrip("-").isdigit():
        return int(raw)
    raise ValueError(f"{spec.json} = {raw!r} is not a whole number")


def _str(spec: FieldSpec, raw: Any) -> str:
    if isinstance(raw, str):
        return raw
    raise ValueError(f"{spec.json} = {raw!r} is not a string")


def _enum(spec: FieldSpec, raw: Any) -> str:
    """Map a number or a name (case-insensitive) to the canonical value name."""
    for name, accepted in spec.values.items():
        for value in accepted:
            if isinstance(raw, str) and isinstance(value, str) and raw.lower() == value.lower():
                return name
            if not isinstance(raw, (str, bool)) and not isinstance(value, str) and raw == value:
                return name
    known = ", ".join(f"{n}={list(v)}" for n, v in spec.values.items())
    raise ValueError(f"{spec.json} = {raw!r} is none of the values the field map knows ({known})")


def _rule(spec: FieldSpec, raw: Any) -> int:
    """``{"enabled": bool, "ruleValue": int}`` -> the value, 0 when the rule is off [C1]."""
    if isinstance(raw, dict) and "enabled" in raw:
        enabled = _bool(spec, raw["enabled"])
        return _int(spec, raw.get("ruleValue", 0)) if enabled else 0
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    raise ValueError(f"{spec.json} = {raw!r} is not an {{enabled, ruleValue}} rule")


def _intmap(spec: FieldSpec, raw: Any) -> dict[str, int]:
    if not isinstance(raw, dict):
        raise ValueError(f"{spec.json} is not an object of counts")
    return {str(k): _int(spec, v) for k, v in raw.items()}


def _list(spec: FieldSpec, raw: Any) -> tuple[dict[str, Any], ...]:
    """Each list item becomes a dict of its sub-fields (absent sub-fields fail the whole list)."""
    if not isinstance(raw, list):
        raise ValueError(f"{spec.json} is not a list")
    items = []
    for index, element in enumerate(raw):
        item: dict[str, Any] = {}
        for name, sub in spec.item.items():
            value = dig(element, sub.json)
            if value is _MISSING:
                raise ValueError(f"{spec.json}[{index}] has no field {sub.json!r}")
            item[name] = normalise(sub, value)
        items.append(item)
    return tuple(items)


_CONVERTERS = {"bool": _bool, "int": _int, "str": _str, "enum": _enum, "rule": _rule,
               "intmap": _intmap, "list": _list}
