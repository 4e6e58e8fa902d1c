"""SmarterMail admin API client and the settings snapshot (network I/O only).

The client signs in at auth/authenticate-user with a unique clientId, sends the bearer token,
refreshes it about a minute before it expires and once on a 401, and logs out at the end. It
checks ``success`` as well as the HTTP status (failures can come as 200 + success:false), puts a
timeout on every call and retries only 5xx and 429, a bounded number of times with backoff. TLS
is verified (against --ca-file if given) unless the caller turned that off explicitly.

Every failure becomes one :class:`mailaudit.errors.ApiError` line naming the server; tokens and
passwords never appear in a message, a log line or the snapshot.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

from mailaudit.errors import ApiError
from mailaudit.fieldmap import ApiSnapshot, Endpoint, EndpointResult, FieldMap, ReadState
from mailaudit.redact import redact

log = logging.getLogger("mailaudit.api")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER_S = 10.0


class RetriesExhaustedError(ApiError):
    """The server kept answering 5xx/429: that endpoint is an error, the session may go on."""


@dataclass(frozen=True)
class ApiSettings:
    """How to reach and sign in to one server's API. The password is never shown in repr."""

    base_url: str
    user: str
    password: str = field(repr=False)
    verify: bool | str = True          # True, a CA bundle path, or False (--api-insecure)
    timeout_s: float = 20.0
    retries: int = 2
    backoff_s: float = 0.5
    refresh_margin_s: float = 60.0
    connect_ip: str | None = None      # dial this address, verify the certificate for the URL host


@dataclass
class _Tokens:
    """A token set in memory only (never logged, never stored in the snapshot)."""

    access: str = field(repr=False)
    refresh: str = field(repr=False)
    expires: float


@dataclass(frozen=True)
class _Answer:
    """One HTTP answer: status, parsed JSON (None if empty), whether the body was JSON."""

    status: int
    data: Any
    is_json: bool


class _PinnedAdapter(HTTPAdapter):
    """Connect to an IP while sending SNI and checking the certificate for the host name."""

    def __init__(self, hostname: str, **kwargs: Any) -> None:
        self._hostname = hostname
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        """Every pool of this adapter uses the pinned host name for SNI and verification."""
        kwargs["server_hostname"] = self._hostname
        kwargs["assert_hostname"] = self._hostname
        super().init_poolmanager(*args, **kwargs)


def api_root(url: str) -> str:
    """The web interface URL without a trailing /api/v1 or slash."""
    url = url.rstrip("/")
    for suffix in ("/api/v1", "/api"):
        if url.lower().endswith(suffix):
            url = url[: -len(suffix)]
    return url


class SmarterMailClient:
    """A signed-in API session for one server. Use as a context manager: logout on exit."""

    def __init__(self, settings: ApiSettings, fieldmap: FieldMap,
                 session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.map = fieldmap
        self.names = fieldmap.auth.fields
        self.client_id = f"mailaudit-{uuid.uuid4()}"
        self._sleep, self._clock = sleep, clock
        self._tokens: _Tokens | None = None
        self._session = session or requests.Session()
        self._root, self._label = self._prepare(settings)

    # -- plumbing ------------------------------------------------------------------------------

    def _prepare(self, settings: ApiSettings) -> tuple[str, str]:
        """The URL to dial and the label for messages (host:port of the URL given)."""
        root = api_root(settings.base_url)
        parts = urlsplit(root)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ApiError(f"--api-url {settings.base_url}: expected https://host[:port]")
        label = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
        if settings.connect_ip and settings.connect_ip != parts.hostname:
            ip = settings.connect_ip
            host = f"[{ip}]" if ipaddress.ip_address(ip).version == 6 else ip
            netloc = f"{host}:{parts.port}" if parts.port else host
            self._session.headers["Host"] = parts.netloc.rsplit("@", 1)[-1]
            self._session.mount(f"{parts.scheme}://{netloc}", _PinnedAdapter(parts.hostname))
            root = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
        return root, label

    def _where(self, method: str, path: str) -> str:
        return f"{self._label}: {method} {path}"

    def _send(self, method: str, path: str, body: Any = None, bearer: str | None = None) -> _Answer:
        """One call with bounded retries on 5xx/429; transport failures raise ApiError."""
        attempts = 1 + max(0, self.settings.retries)
        for attempt in range(attempts):
            response = self._request(method, path, body, bearer)
            if response.status_code not in RETRY_STATUSES or attempt == attempts - 1:
                break
            pause = self._pause(response, attempt)
            log.debug("%s -> HTTP %s, retry in %.1f s", self._where(method, path), response.status_code, pause)
            self._sleep(pause)
        log.debug("%s -> HTTP %s", self._where(method, path), response.status_code)
        if response.status_code in RETRY_STATUSES:
            raise RetriesExhaustedError(f"{self._where(method, path)}: HTTP {response.status_code} "
                           f"after {attempts} attempts")
        return self._parse(response)

    def _pause(self, response: requests.Response, attempt: int) -> float:
        backoff = self.settings.backoff_s * (2 ** attempt)
        retry_after = response.headers.get("Retry-After", "")
        if response.status_code == 429 and retry_after.strip().isdigit():
            return min(float(retry_after), MAX_RETRY_AFTER_S)
        return backoff

    def _request(self, method: str, path: str, body: Any, bearer: str | None) -> requests.Response:
        headers = {"Accept": "application/json"}
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        timeout = (min(10.0, self.settings.timeout_s), self.settings.timeout_s)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")     # the insecure warning: the report says it
                return self._session.request(method, self._root + path, json=body, headers=headers,
                                             timeout=timeout, verify=self.settings.verify,
                                             allow_redirects=False)
        except requests.exceptions.SSLError as exc:
            raise ApiError(f"{self._label}: TLS certificate not accepted ({_reason(exc)}); "
                           "give --ca-file for a private CA") from None
        except requests.exceptions.ConnectTimeout:
            raise ApiError(f"{self._label}: no connection within {timeout[0]:.0f} s") from None
        except requests.exceptions.ReadTimeout:
            raise ApiError(f"{self._where(method, path)}: no answer within "
                           f"{self.settings.timeout_s:.0f} s") from None
        except requests.exceptions.ConnectionError as exc:
            raise ApiError(f"{self._label}: cannot connect ({_reason(exc)})") from None
        except requests.exceptions.RequestException as exc:
            raise ApiError(f"{self._where(method, path)}: {_reason(exc)}") from None

    @staticmethod
    def _parse(response: requests.Response) -> _Answer:
        text = response.content.strip()
        if not text:
            return _Answer(response.status_code, None, False)
        try:
            return _Answer(response.status_code, response.json(), True)
        except ValueError:
            return _Answer(response.status_code, None, False)

    @property
    def label(self) -> str:
        """host:port of the API, for messages."""
        return self._label

    def value_of(self, data: Any, name: str, default: Any = None) -> Any:
        """A field of an answer by its client-side name (JSON name from the field map's auth.fields)."""
        return data.get(self.names[name], default) if isinstance(data, dict) else default

    def message_of(self, data: Any) -> str:
        """The envelope's ``message`` (a code such as USERNAME_OR_PASSWORD_INCORRECT), or ''."""
        return str(self.value_of(data, "message") or "")

    # -- authentication ------------------------------------------------------------------------

    def login(self) -> None:
        """Sign in; raise one ApiError line for wrong credentials, 2FA, password change, role."""
        call = self.map.auth.login
        body = {self.names["username"]: self.settings.user, self.names["password"]: self.settings.password,
                self.names["client_id"]: self.client_id}
        answer = self._send(call.method, call.path, body)
        data = answer.data if answer.is_json else {}
        who = f"{self._label}: API login as {self.settings.user!r}"
        if answer.status >= 400 or self.value_of(data, "success") is False:
            raise ApiError(f"{who} refused: {_login_reason(answer.status, self.message_of(data))}")
        if not answer.is_json:
            raise ApiError(f"{who}: HTTP {answer.status} with a body that is not JSON")
        message = self.message_of(data)
        if message.startswith(self.map.auth.two_factor_prefix):
            raise ApiError(f"{who}: the account requires two-factor authentication; "
                           "use an audit account without 2FA")
        if self.value_of(data, "change_password_needed") or self.value_of(data, "password_expired"):
            raise ApiError(f"{who}: the account must change its password first "
                           "(sign in once in the web interface)")
        self._tokens = self._tokens_from(data, "access_token", "refresh_token", "access_expiration", who)
        if self.value_of(data, "is_admin") is not True:
            role = "a domain administrator" if self.value_of(data, "is_domain_admin") else "not an administrator"
            self.logout()
            raise ApiError(f"{who}: the account is {role}; the audit reads /settings/sysadmin/* "
                           "and needs a system administrator (sysadmin endpoints answer 403)")

    def _tokens_from(self, data: Any, access: str, refresh: str, expiry: str, who: str) -> _Tokens:
        token = self.value_of(data, access)
        if not isinstance(token, str) or not token:
            raise ApiError(f"{who}: the answer has no {self.names[access]}")
        return _Tokens(token, str(self.value_of(data, refresh) or ""),
                       _expiry(self.value_of(data, expiry), self._clock()))

    def _refresh(self, tokens: _Tokens) -> bool:
        """Rotate a token set in place; False when the server refuses (log in again then)."""
        if not tokens.refresh:
            return False
        call = self.map.auth.refresh
        answer = self._send(call.method, call.path, {self.names["refresh_body_token"]: tokens.refresh,
                                                     self.names["client_id"]: self.client_id})
        if answer.status >= 400 or not answer.is_json or self.value_of(answer.data, "success") is False:
            log.debug("%s: refresh refused (HTTP %s)", self._label, answer.status)
            return False
        fresh = self._tokens_from(answer.data, "access_token", "refresh_token", "access_expiration",
                                  f"{self._label}: token refresh")
        tokens.access, tokens.refresh, tokens.expires = fresh.access, fresh.refresh or tokens.refresh, fresh.expires
        return True

    def _renew(self) -> None:
        """Refresh the main session, or sign in again if the refresh is refused."""
        if self._tokens is None or not self._refresh(self._tokens):
            self.login()

    def logout(self) -> None:
        """Revoke this run's tokens (best effort: a failure here is only logged)."""
        tokens, self._tokens = self._tokens, None
        if tokens is not None:
            self._logout_tokens(tokens)

    def _logout_tokens(self, tokens: _Tokens) -> None:
        call = self.map.auth.logout
        try:
            self._send(call.method, call.path, {}, bearer=tokens.access)
        except ApiError as exc:
            log.info("logout failed: %s", redact(str(exc)))

    # -- authorised calls ----------------------------------------------------------------------

    def call(self, endpoint: Endpoint, domain: str | None = None, tokens: _Tokens | None = None,
             renew: Callable[[], None] | None = None) -> _Answer:
        """Call an endpoint with the main token (or the given one); refresh before expiry and
        once on a 401 (``renew`` replaces a refused token set: sign in again, re-impersonate)."""
        path, body = endpoint.path_for(domain), endpoint.body
        if endpoint.scope == "public":
            return self._send(endpoint.method, path, body)
        own = tokens is None
        renew = renew or self._renew

        def current() -> _Tokens:
            return self._session_tokens() if own else tokens

        if current().expires - self.settings.refresh_margin_s <= self._clock():
            self._renew_tokens(current(), renew)
        answer = self._send(endpoint.method, path, body, bearer=current().access)
        if answer.status != 401:
            return answer
        self._renew_tokens(current(), renew)
        answer = self._send(endpoint.method, path, body, bearer=current().access)
        if answer.status == 401:
            raise ApiError(f"{self._where(endpoint.method, path)}: token refused (HTTP 401) "
                           "even after a refresh")
        return answer

    def _renew_tokens(self, tokens: _Tokens, renew: Callable[[], None]) -> None:
        if not self._refresh(tokens):
            renew()

    def _session_tokens(self) -> _Tokens:
        if self._tokens is None:
            raise ApiError(f"{self._label}: not signed in")
        return self._tokens

    def impersonate(self, domain: str) -> _Tokens:
        """A domain-admin token for one domain via manage-domain [C4][C5][C10]."""
        call = self.map.auth.manage_domain
        endpoint = Endpoint("manage_domain", call.method, call.path, "sysadmin_domain", call.status,
                            call.source, {})
        answer = self.call(endpoint, domain)
        who = f"{self._label}: {call.method} {call.path_for(domain)}"
        if answer.status >= 400 or not answer.is_json or self.value_of(answer.data, "success") is False:
            raise ApiError(f"{who}: HTTP {answer.status} {self.message_of(answer.data)}".rstrip())
        return self._tokens_from(answer.data, "impersonate_access_token", "impersonate_refresh_token",
                                 "impersonate_expiration", who)

    def end_impersonation(self, tokens: _Tokens) -> None:
        """Log the impersonation token out (best effort)."""
        self._logout_tokens(tokens)

    def __enter__(self) -> SmarterMailClient:
        self.login()
        return self

    def __exit__(self, *exc: object) -> None:
        self.logout()


# --- the snapshot -----------------------------------------------------------------------------

def take_snapshot(settings: ApiSettings, fieldmap: FieldMap, server: str,
                  session: requests.Session | None = None,
                  sleep: Callable[[float], None] = time.sleep) -> ApiSnapshot:
    """Read every endpoint of the field map once (per domain where needed) and log out."""
    client = SmarterMailClient(settings, fieldmap, session=session, sleep=sleep)
    results: dict[tuple[str, str | None], EndpointResult] = {}
    by_scope = _group(fieldmap)
    for endpoint in by_scope["public"]:
        results[(endpoint.key, None)] = fetch(client, endpoint)
    with client:
        domains = _domains(client, fieldmap, results)
        cache: dict[tuple[str, str, str], EndpointResult] = {}
        for endpoint in by_scope["sysadmin"]:
            if (endpoint.key, None) not in results:
                results[(endpoint.key, None)] = _cached(cache, endpoint, lambda e=endpoint: fetch(client, e))
        for domain in domains:
            for endpoint in by_scope["sysadmin_domain"]:
                results[(endpoint.key, domain)] = fetch(client, endpoint, domain)
            results.update(_domain_scope(client, by_scope["domain"], domain))
    return ApiSnapshot(server=server, base_url=client.label, fieldmap=fieldmap, results=results,
                       domains=domains, user=settings.user, tls_verified=settings.verify is not False)


def _group(fieldmap: FieldMap) -> dict[str, list[Endpoint]]:
    """Endpoints by scope, keeping only those some field reads."""
    used = {f.endpoint for f in fieldmap.fields.values()}
    groups: dict[str, list[Endpoint]] = {"public": [], "sysadmin": [], "sysadmin_domain": [], "domain": []}
    for key, endpoint in fieldmap.endpoints.items():
        if key in used:
            groups[endpoint.scope].append(endpoint)
    return groups


def _cached(cache: dict[tuple[str, str, str], EndpointResult], endpoint: Endpoint,
            read: Callable[[], EndpointResult]) -> EndpointResult:
    """Two map entries with the same request share one call."""
    key = (endpoint.method, endpoint.path, repr(endpoint.body))
    if key not in cache:
        cache[key] = read()
    return cache[key]


def _domains(client: SmarterMailClient, fieldmap: FieldMap,
             results: dict[tuple[str, str | None], EndpointResult]) -> tuple[str, ...]:
    """Read the domain list first: a 403 here means the account cannot audit at all."""
    endpoint = fieldmap.endpoint_of("domain_names")
    result = fetch(client, endpoint)
    results[(endpoint.key, None)] = result
    if result.state is ReadState.ERROR and "HTTP 403" in result.detail:
        raise ApiError(f"{client.label}: {result.request} answered 403: the account is not allowed "
                       "to read system-admin settings (a domain-admin token?)")
    if result.state is not ReadState.OK:
        return ()
    snapshot = ApiSnapshot("", client.label, fieldmap, results, (), "")
    reading = snapshot.read("domain_names")
    if not reading.ok:
        return ()
    return tuple(sorted(str(item["name"]).lower() for item in reading.value))


def _domain_scope(client: SmarterMailClient, endpoints: list[Endpoint],
                  domain: str) -> dict[tuple[str, str | None], EndpointResult]:
    """Read a domain's domain-admin endpoints with an impersonation token."""
    if not endpoints:
        return {}
    try:
        tokens = client.impersonate(domain)
    except ApiError as exc:
        detail = f"impersonation failed: {exc}"
        return {(e.key, domain): EndpointResult(e.describe(domain), ReadState.ERROR, detail=detail)
                for e in endpoints}

    def renew() -> None:
        fresh = client.impersonate(domain)
        tokens.access, tokens.refresh, tokens.expires = fresh.access, fresh.refresh, fresh.expires

    try:
        return {(e.key, domain): fetch(client, e, domain, tokens, renew) for e in endpoints}
    finally:
        client.end_impersonation(tokens)


def fetch(client: SmarterMailClient, endpoint: Endpoint, domain: str | None = None,
          tokens: _Tokens | None = None, renew: Callable[[], None] | None = None) -> EndpointResult:
    """One endpoint's result: JSON body, 404 (build lacks it) or an error line.

    Transport failures (timeout, refused connection, TLS) propagate: the server is unusable.
    """
    request = endpoint.describe(domain)
    try:
        answer = client.call(endpoint, domain, tokens, renew)
    except RetriesExhaustedError as exc:
        return EndpointResult(request, ReadState.ERROR, detail=_tail(exc, client))
    return _result(client, request, answer)


def _result(client: SmarterMailClient, request: str, answer: _Answer) -> EndpointResult:
    data, status = answer.data, answer.status
    code = client.value_of(data, "result_code")
    message = client.message_of(data)
    if status == 404 or (status == 200 and code == 404 and client.value_of(data, "success") is False):
        return EndpointResult(request, ReadState.MISSING, detail="HTTP 404")
    if status == 403:
        return EndpointResult(request, ReadState.ERROR, detail=f"HTTP 403 {message}".rstrip()
                              + ": the account lacks the role this endpoint needs")
    if status >= 400:
        return EndpointResult(request, ReadState.ERROR, detail=f"HTTP {status} {message}".rstrip())
    if not answer.is_json:
        return EndpointResult(request, ReadState.ERROR,
                              detail=f"HTTP {status} with a body that is not JSON (malformed reply)")
    if client.value_of(data, "success") is False:
        return EndpointResult(request, ReadState.ERROR,
                              detail=f"HTTP {status} but success:false ({message or 'no message'})")
    return EndpointResult(request, ReadState.OK, body=data)


def _tail(exc: ApiError, client: SmarterMailClient) -> str:
    text = str(exc)
    prefix = f"{client.label}: "
    text = text[len(prefix):] if text.startswith(prefix) else text
    return text.split(": ", 1)[1] if ": " in text else text


# --- helpers ----------------------------------------------------------------------------------

def _expiry(value: Any, now: float) -> float:
    """Parse accessTokenExpiration (ISO 8601; no zone means UTC); unknown -> 10 minutes [C1]."""
    if isinstance(value, str) and value:
        text = value.strip().replace("Z", "+00:00")
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            return now + 600
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        return moment.timestamp()
    return now + 600


def _login_reason(status: int, message: str) -> str:
    """A plain reason for a refused login (the API's code kept in brackets)."""
    code = message.split("|", 1)[0]
    if code in ("USERNAME_OR_PASSWORD_INCORRECT", "USER_NOT_FOUND") or (status == 401 and not code):
        text = "wrong user name or password"
    elif "too many" in message.lower():
        text = "too many login attempts"
    elif "ip restriction" in message.lower():
        text = "IP restriction against a system administrator"
    else:
        text = f"HTTP {status}"
    return f"{text} ({code})" if code else text


def _reason(exc: Exception) -> str:
    """A short, secret-free reason from a requests exception."""
    text = str(exc)
    for marker in ("certificate verify failed", "Connection refused", "Name or service not known",
                   "No route to host", "timed out", "hostname mismatch", "doesn't match"):
        if marker.lower() in text.lower():
            return marker
    return redact(text.splitlines()[0][:160]) if text else type(exc).__name__
