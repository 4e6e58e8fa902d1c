"""The SmarterMail API field map (fieldmap.yaml) and reading settings through it.

The map names every endpoint and JSON field the suite reads, each marked *seen* (a source of
smartermail-api.md shows it), *assumed* (no source does: the suite's guess) or *confirmed* (a site
checked it on its own build and says so in its copy of the map). An enum's value set carries its
own status (``values_status``): a number whose meaning is only assumed is never trusted, so such a
reading is GUESSED (an inconclusive verdict), unless the site marked the value set ``confirmed``.

The snapshot the API probe takes is stored per endpoint; :meth:`ApiSnapshot.read` turns one field
of it into a :class:`Reading`: a normalised value, or why it could not be used (404 endpoint,
missing field, unmapped or guessed value, endpoint error). Pure data handling: no I/O except
loading the YAML file.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from mailaudit.errors import ApiError, BudgetExceeded, ConfigError
from mailaudit.yamlsafe import load_yaml

FIELDMAP_FILE = Path(__file__).with_name("fieldmap.yaml")
STATUSES = ("seen", "confirmed", "assumed")
SCOPES = ("public", "login", "sysadmin", "sysadmin_domain", "domain")
TYPES = ("bool", "int", "str", "enum", "rule", "intmap", "list", "raw")
AUTH_FIELDS = (
    "username", "password", "client_id", "refresh_body_token", "access_token", "refresh_token",
    "access_expiration", "refresh_expiration", "is_admin", "is_domain_admin",
    "change_password_needed", "password_expired", "success", "result_code", "message",
    "impersonate_access_token", "impersonate_refresh_token", "impersonate_expiration",
)
# A POST the suite may send outside auth: a paged list query [C1][C2], never a settings write.
LIST_BODY_KEYS = frozenset({
    "skip", "take", "search", "sortField", "sortDescending", "name", "count", "startIndex",
    "startindex", "ascending", "sortType", "serviceTypes", "searchParams", "showHoneypot",
})
WRITE_WORDS = ("add", "put", "set", "save", "update", "delete", "remove", "enable", "disable", "reset",
               "create", "start", "stop", "unblock", "force", "connect", "generate", "revoke", "expire",
               "propagate", "import", "restore", "send", "move", "purge", "clear")
_MISSING = object()
_NUMBER = re.compile(r"\s*[-+]?\d+\s*")


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
    """One JSON field (or list item sub-field) and how to normalise its value.

    ``json`` is the dotted path the map expects; ``alternatives`` are further paths tried in
    order when the first is absent (another build's spelling, a server-default part).
    """

    key: str
    json: str
    type: str
    endpoint: str = ""
    status: str = "assumed"
    source: str = ""
    ui: str = ""
    values: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    values_status: str = ""
    alternatives: tuple[str, ...] = ()
    item: Mapping[str, FieldSpec] = field(default_factory=dict)

    @property
    def paths(self) -> tuple[str, ...]:
        """Every JSON path tried, in order."""
        return (self.json, *self.alternatives)

    @property
    def has_enum(self) -> bool:
        """True when the field (or one of its list sub-fields) is an enum."""
        return self.type == "enum" or any(sub.has_enum for sub in self.item.values())

    @property
    def effective_values_status(self) -> str:
        """The status of the value set: its own, else the field's; '' when there is no enum."""
        if not self.has_enum:
            return ""
        return self.values_status or self.status

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
        """Keys of fields, endpoints and value sets still marked assumed (a site should verify them)."""
        keys = [f"endpoint {k}" for k, e in self.endpoints.items() if e.status == "assumed"]
        keys += [f"field {k}" for k, f in self.fields.items() if f.status == "assumed"]
        keys += [f"values of {k}" for k, f in self.fields.items() if f.effective_values_status == "assumed"]
        return tuple(keys)

    def fields_of(self, endpoint_key: str) -> tuple[FieldSpec, ...]:
        """The fields read from one endpoint."""
        return tuple(f for f in self.fields.values() if f.endpoint == endpoint_key)


# --- loading ----------------------------------------------------------------------------------

def load_fieldmap(path: Path | str | None = None) -> FieldMap:
    """Load and validate a field map; raise ConfigError naming the bad entry."""
    path = Path(path) if path else FIELDMAP_FILE
    raw = load_yaml(path, f"--api-fieldmap {path}")     # bounded: no anchors/aliases, size, depth
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
        raise ConfigError(f"field map {path}: '{where}.status' must be one of {', '.join(STATUSES)}")
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
    if scope_required and scope != "login" and method == "POST":
        _check_read_only(key, route, body, path)
    return Endpoint(key, method, route, scope, status, source, body)


def _check_read_only(key: str, route: str, body: dict[str, Any] | None, path: Path) -> None:
    """A settings POST is allowed only as a paged list query: the suite never writes settings."""
    keys = set(body or {})
    if not body or not keys <= LIST_BODY_KEYS:
        extra = sorted(keys - LIST_BODY_KEYS)
        raise ConfigError(f"field map {path}: '{key}' is a POST; only list queries are allowed (a body of "
                          f"paging keys), not {', '.join(extra) or 'an empty body'}: the audit never writes")
    words = re.split(r"[-_/{}]+", route.lower())
    if any(word in WRITE_WORDS for word in words):
        raise ConfigError(f"field map {path}: '{key}' POSTs to {route}, which looks like a write; "
                          "the audit only reads")


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
    kind, json_paths = entry.get("type"), entry.get("json")
    if isinstance(json_paths, str):
        json_paths = [json_paths]
    fallback = entry.get("fallback")
    if isinstance(fallback, str):
        json_paths = [*(json_paths or []), fallback]
    valid_paths = isinstance(json_paths, list) and json_paths and all(
        isinstance(p, str) and p for p in json_paths)
    if kind not in TYPES or not valid_paths:
        raise ConfigError(f"field map {path}: '{key}' needs json (a dotted path, or a list of them) "
                          f"and type ({', '.join(TYPES)})")
    values = entry.get("values") or {}
    if kind == "enum" and (not isinstance(values, dict) or not values):
        raise ConfigError(f"field map {path}: '{key}' is an enum and needs values")
    if isinstance(values, dict) and not all(isinstance(name, str) for name in values):
        raise ConfigError(f"field map {path}: '{key}.values' names must be strings "
                          "(quote on/off/yes/no: YAML reads them as booleans)")
    values_status = str(entry.get("values_status", ""))
    if values_status not in ("", *STATUSES):
        raise ConfigError(f"field map {path}: '{key}.values_status' must be one of {', '.join(STATUSES)}")
    item = entry.get("item") or {}
    if kind == "list" and not isinstance(item, dict):
        raise ConfigError(f"field map {path}: '{key}.item' must be a mapping of sub-fields")
    return FieldSpec(
        key=key, json=json_paths[0], type=kind, alternatives=tuple(json_paths[1:]),
        values={name: tuple(raw if isinstance(raw, list) else [raw]) for name, raw in values.items()},
        values_status=values_status,
        item={name: _spec(f"{key}.item.{name}", _mapping(sub, f"{key}.item.{name}", path), path)
              for name, sub in item.items()},
    )


# --- readings ---------------------------------------------------------------------------------

class ReadState(StrEnum):
    """Whether a field could be read, and if not, why."""

    OK = "ok"
    GUESSED = "guessed"        # read, but its value is a number whose meaning the map only assumes
    MISSING = "missing"        # the endpoint answered 404: the build lacks it
    ABSENT = "absent"          # the endpoint answered, the field is not in the response
    UNMAPPED = "unmapped"      # present, but its value is not one the map knows
    ERROR = "error"            # the endpoint could not be read (5xx, timeout, malformed JSON)


@dataclass(frozen=True)
class EndpointResult:
    """What one endpoint call gave: a JSON body, a 404, or an error line.

    ``budget`` marks an error that is a policy bound (deadline, size, depth): reading a field of
    it raises BudgetExceeded instead of ApiError.
    """

    request: str
    state: ReadState
    body: Any = None
    detail: str = ""
    budget: bool = False


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
    endpoint: str = ""
    endpoint_status: str = "seen"
    values_status: str = ""
    guesses: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the value was read and normalised with a trusted meaning."""
        return self.state is ReadState.OK

    @property
    def present(self) -> bool:
        """True when the API gave the field (whether or not its value is usable)."""
        return self.state in (ReadState.OK, ReadState.GUESSED, ReadState.UNMAPPED)

    def provenance(self) -> str:
        """'seen', or which parts the reading rests on otherwise ('field assumed, values assumed')."""
        parts = {"endpoint": self.endpoint_status, "field": self.status, "values": self.values_status}
        odd = [f"{name} {status}" for name, status in parts.items() if status and status != "seen"]
        return ", ".join(odd) or "seen"

    def entries(self, status: str) -> list[str]:
        """The map entries of this reading that have ``status`` (endpoint, field, value set)."""
        found = []
        if self.endpoint and self.endpoint_status == status:
            found.append(f"endpoint {self.endpoint}")
        if self.status == status:
            found.append(f"field {self.key}")
        if self.values_status == status:
            found.append(f"values of {self.key}")
        return found

    def evidence(self) -> str:
        """One evidence line: request, field, value and provenance (never a secret)."""
        where = f"[{self.domain}] " if self.domain else ""
        if self.state is ReadState.OK and self.kind == "enum":
            shown = f"{_shown(self.raw)} ({self.value})"
        elif self.state is ReadState.GUESSED:
            shown = (f"{_shown(self.raw)} (the map guesses {_shown(self.value)}: "
                     f"{'; '.join(self.guesses)}; meaning not confirmed)")
        elif self.state is ReadState.OK and self.kind in ("list", "rule", "intmap"):
            shown = _shown(list(self.value) if self.kind == "list" else self.value)
        elif self.state in (ReadState.OK, ReadState.UNMAPPED):
            shown = _shown(self.raw)
        else:
            shown = self.detail
        return f"{where}{self.request} -> {self.json} = {shown} ({self.provenance()}; source {self.source})"

    def why_unreadable(self) -> str:
        """The reason this reading is not usable, for a skip or inconclusive message."""
        where = f" for {self.domain}" if self.domain else ""
        if self.state is ReadState.GUESSED:
            return (f"{self.key}{where}: the API gave {', '.join(self.guesses)}, a number whose meaning no "
                    f"source gives (the field map only guesses it); confirm it at {self.manual}, then mark "
                    f"the value set 'values_status: confirmed' in a site field map (--api-fieldmap)")
        if self.state is ReadState.UNMAPPED:
            return f"{self.key}{where}: {self.detail}; check manually: {self.manual}"
        return f"{self.key}{where}: {self.detail}; check manually: {self.manual}"


def _shown(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 300 else text[:300] + "..."


def basis_of(readings: Iterable[Reading]) -> str:
    """What a verdict rests on: 'seen', 'confirmed' (a site checked an entry) or
    'assumed: <entries>' (entries no source gives)."""
    readings = list(readings)
    assumed = list(dict.fromkeys(e for r in readings for e in r.entries("assumed")))
    if assumed:
        return "assumed: " + ", ".join(assumed)
    if any(r.entries("confirmed") for r in readings):
        return "confirmed"
    return "seen"


@dataclass(frozen=True)
class ApiSnapshot:
    """Every endpoint of the field map as read once from one server, plus the login facts.

    ``domains`` are the domains read; ``domains_listed`` how many the server listed (more than
    read when the policy's cap made the read a sample).
    """

    server: str
    base_url: str
    fieldmap: FieldMap
    results: Mapping[tuple[str, str | None], EndpointResult]
    domains: tuple[str, ...]
    user: str
    tls_verified: bool = True
    domains_listed: int = 0
    domain_cap_key: str = "api.max_domains"

    @property
    def sampled(self) -> bool:
        """True when fewer domains were read than the server lists (the policy's cap)."""
        return self.domains_listed > len(self.domains)

    def sample_note(self) -> str:
        """One sentence on the domain sample, or '' when every domain was read."""
        if not self.sampled:
            return ""
        return (f"a sample: {len(self.domains)} of {self.domains_listed} domains were read "
                f"(policy {self.domain_cap_key})")

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
        """Read one field; raise ApiError (BudgetExceeded for a policy bound) when its endpoint
        failed: the test is then an error, never a verdict."""
        spec = self.fieldmap.fields[field_key]
        endpoint = self.fieldmap.endpoints[spec.endpoint]
        result = self.result(spec.endpoint, domain)
        base = dict(key=field_key, request=result.request or endpoint.describe(domain), json=spec.json,
                    status=spec.status, source=spec.source, manual=spec.manual(domain),
                    domain=domain if endpoint.per_domain else None, endpoint=endpoint.key,
                    endpoint_status=endpoint.status, values_status=spec.effective_values_status)
        if result.state is ReadState.ERROR:
            error = BudgetExceeded if result.budget else ApiError
            raise error(f"{self.base_url}: {result.request}: {result.detail}")
        if result.state is ReadState.MISSING:
            return Reading(state=ReadState.MISSING, detail=f"{result.request} answered 404 "
                           f"(this build lacks the endpoint; field map entry {spec.endpoint!r} "
                           f"is {endpoint.status})", **base)
        return read_value(spec, result.body, base)


def read_value(spec: FieldSpec, body: Any, base: dict[str, Any]) -> Reading:
    """Find a field (or one of its alternative paths) in a JSON body and normalise it."""
    raw, json_used = _MISSING, spec.json
    for candidate in spec.paths:
        raw = dig(body, candidate)
        if raw is not _MISSING and raw is not None:
            json_used = candidate
            break
    if raw is None:
        raw = _MISSING if len(spec.paths) > 1 else None
    base = {"values_status": spec.effective_values_status, **base, "json": json_used, "kind": spec.type}
    if raw is _MISSING:
        tried = " or ".join(repr(p) for p in spec.paths)
        return Reading(state=ReadState.ABSENT, detail=f"the response has no field {tried} "
                       f"(field map entry is {spec.status})", **base)
    guesses: list[str] = []
    try:
        value = _normalise(spec, raw, guesses)
    except ValueError as exc:
        return Reading(state=ReadState.UNMAPPED, raw=raw, detail=str(exc), **base)
    state = ReadState.GUESSED if guesses and base["values_status"] == "assumed" else ReadState.OK
    return Reading(state=state, value=value, raw=raw, guesses=tuple(guesses), **base)


def dig(body: Any, dotted: str) -> Any:
    """Follow a dotted path through nested objects; the _MISSING sentinel when absent."""
    current = body
    for part in dotted.split("."):
        if not isinstance(current, dict) or part not in current:
            return _MISSING
        current = current[part]
    return current


def is_missing(value: Any) -> bool:
    """True for the sentinel :func:`dig` returns for an absent path."""
    return value is _MISSING


def normalise(spec: FieldSpec, raw: Any) -> Any:
    """Turn a raw JSON value into the field's type; ValueError when it does not fit."""
    return _normalise(spec, raw, [])


def _normalise(spec: FieldSpec, raw: Any, guesses: list[str]) -> Any:
    kind = spec.type
    if kind == "raw":
        return copy.deepcopy(raw)
    if raw is None:
        raise ValueError(f"{spec.json} is null")
    if kind == "enum":
        return _enum(spec, raw, guesses)
    if kind == "list":
        return _list(spec, raw, guesses)
    converter = _CONVERTERS.get(kind)
    if converter is not None:
        return converter(spec, raw)
    raise ValueError(f"unknown type {kind}")


def _bool(spec: FieldSpec, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
        return raw.strip().lower() == "true"     # [C6]: some booleans arrive as "True"
    raise ValueError(f"{spec.json} = {_shown(raw)} is not a boolean")


def _int(spec: FieldSpec, raw: Any) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and re.fullmatch(r"\s*-?[0-9]{1,18}\s*", raw):
        return int(raw)
    raise ValueError(f"{spec.json} = {_shown(raw)} is not a whole number")


def _str(spec: FieldSpec, raw: Any) -> str:
    if isinstance(raw, str):
        return raw
    raise ValueError(f"{spec.json} = {_shown(raw)} is not a string")


def is_number(raw: Any) -> bool:
    """A JSON number, or a string of digits ("1"): an enum value whose meaning is not in its text."""
    if isinstance(raw, bool):
        return False
    if isinstance(raw, (int, float)):
        return True
    return isinstance(raw, str) and bool(_NUMBER.fullmatch(raw))


def enum_key(value: Any) -> tuple[str, Any]:
    """The comparison key of an enum value: numbers by value ("1" == 1), booleans as such, names
    case-, space- and separator-insensitively ("OnlyLocalDomains" == "only_local_domains")."""
    if isinstance(value, bool):
        return ("bool", value)
    if is_number(value):
        number = float(value)
        return ("number", int(number) if number.is_integer() else number)
    if isinstance(value, str):
        return ("name", re.sub(r"[\W_]+", "", value.casefold()))
    return ("other", repr(value))


def _enum(spec: FieldSpec, raw: Any, guesses: list[str]) -> str:
    """Map a number or a name to the canonical value name; note numbers (meaning not in the text)."""
    if isinstance(raw, (dict, list)):
        raise ValueError(f"{spec.json} = {_shown(raw)} is not an enum value")
    wanted = enum_key(raw)
    for name, accepted in spec.values.items():
        if any(enum_key(value) == wanted for value in accepted):
            if is_number(raw):
                guesses.append(f"{spec.json} = {_shown(raw)} -> {name}")
            return name
    known = ", ".join(f"{n}={list(v)}" for n, v in spec.values.items())
    raise ValueError(f"{spec.json} = {_shown(raw)} is none of the values the field map knows ({known})")


def _rule(spec: FieldSpec, raw: Any) -> int:
    """``{"enabled": bool, "ruleValue": int}`` -> the value, 0 when the rule is off [C1]."""
    if isinstance(raw, dict) and "enabled" in raw:
        enabled = _bool(spec, raw["enabled"])
        return _int(spec, raw.get("ruleValue", 0)) if enabled else 0
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    raise ValueError(f"{spec.json} = {_shown(raw)} is not an {{enabled, ruleValue}} rule")


def _intmap(spec: FieldSpec, raw: Any) -> dict[str, int]:
    if not isinstance(raw, dict):
        raise ValueError(f"{spec.json} is not an object of counts")
    return {str(k): _int(spec, v) for k, v in raw.items()}


def _list(spec: FieldSpec, raw: Any, guesses: list[str]) -> tuple[Any, ...]:
    """Each list item becomes a dict of its sub-fields (absent sub-fields fail the whole list);
    a list without sub-fields keeps its items as they came (counted, shown whatever their keys)."""
    if not isinstance(raw, list):
        raise ValueError(f"{spec.json} is not a list")
    if not spec.item:
        return tuple(copy.deepcopy(raw))
    items = []
    for index, element in enumerate(raw):
        item: dict[str, Any] = {}
        for name, sub in spec.item.items():
            value = dig(element, sub.json)
            if value is _MISSING:
                raise ValueError(f"{spec.json}[{index}] has no field {sub.json!r}")
            item[name] = _normalise(sub, value, guesses)
        items.append(item)
    return tuple(items)


_CONVERTERS = {"bool": _bool, "int": _int, "str": _str, "rule": _rule, "intmap": _intmap}
