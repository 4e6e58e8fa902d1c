"""SmarterMail admin API client and the settings snapshot (network I/O only).

The client signs in at auth/authenticate-user with a unique clientId, sends the bearer token,
refreshes it about a minute before it expires and once on a 401, and logs out at the end. It
checks ``success`` as well as the HTTP status (failures can come as 200 + success:false) and
retries only 5xx and 429, a bounded number of times with backoff. TLS is verified (against
--ca-file if given) unless the caller turned that off explicitly.

Every call is bounded by the policy (issue 13): a total time per call (a watchdog shuts the
socket, so a server trickling one byte at a time cannot stretch it), a deadline for all calls to
one server, a response size cap (the answer is streamed and dropped past the cap), a JSON nesting
cap (checked before parsing) and a cap on the domains read (beyond it an evenly spread sample).
A bound reached raises :class:`BudgetExceeded`; every other failure is one :class:`ApiError`
line naming the server. Tokens the server hands out are registered with the redaction module, so
a server that echoes them (in a 403 body, say) cannot put them into a report.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import re
import socket
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from mailaudit.budget import Deadline
from mailaudit.errors import ApiError, BudgetExceeded, ProbeError
from mailaudit.fieldmap import ApiSnapshot, Endpoint, EndpointResult, FieldMap, ReadState
from mailaudit.redact import redact, register_secret

log = logging.getLogger("mailaudit.api")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER_S = 10.0
CHUNK_BYTES = 65536
MESSAGE_CHARS = 200       # a server's message is quoted at most this long
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


class RetriesExhaustedError(ApiError):
    """The server kept answering 5xx/429: that endpoint is an error, the session may go on."""


@dataclass(frozen=True)
class ApiSettings:
    """How to reach and sign in to one server's API, and the policy's bounds. The password is
    never shown in repr."""

    base_url: str
    user: str
    password: str = field(repr=False)
    verify: bool | str = True          # True, a CA bundle path, or False (--api-insecure)
    timeout_s: float = 20.0
    retries: int = 2
    backoff_s: float = 0.5
    refresh_margin_s: float = 60.0
    connect_ip: str | None = None      # dial this address, verify the certificate for the URL host
    call_deadline_s: float = 60.0
    server_deadline_s: float = 300.0
    max_response_bytes: int = 8_000_000
    max_json_depth: int = 64
    max_domains: int = 500


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


# --- transport: sockets a watchdog can shut ---------------------------------------------------

class _SocketWatch:
    """The connections one adapter opened; ``kill`` shuts them all (a call ran out of time).

    A connection is remembered by its descriptor and its two addresses: the TLS layer takes the
    descriptor over from the socket object urllib3 created, and the addresses make sure a reused
    descriptor number (another connection) is never touched."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connections: dict[int, tuple[int, Any, Any]] = {}
        self.fired = threading.Event()

    def add(self, sock: socket.socket) -> None:
        """Remember a freshly connected socket."""
        with suppress(OSError), self._lock:
            self._connections[sock.fileno()] = (sock.family, sock.getsockname(), sock.getpeername())

    def kill(self) -> None:
        """Shut every remembered connection down: a thread blocked reading one returns at once."""
        self.fired.set()
        with self._lock:
            connections = list(self._connections.items())
        for fd, (family, local, peer) in connections:
            with suppress(OSError):
                dup = socket.fromfd(fd, family, socket.SOCK_STREAM)
                with dup:
                    if dup.getsockname() == local and dup.getpeername() == peer:
                        dup.shutdown(socket.SHUT_RDWR)


def _pool_classes(watch: _SocketWatch) -> dict[str, type]:
    """Connection pools whose connections register their sockets with ``watch``."""

    class WatchedHTTP(HTTPConnection):
        def _new_conn(self) -> socket.socket:
            sock = super()._new_conn()
            watch.add(sock)
            return sock

    class WatchedHTTPS(HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            sock = super()._new_conn()
            watch.add(sock)
            return sock

    class HTTPPool(HTTPConnectionPool):
        ConnectionCls = WatchedHTTP

    class HTTPSPool(HTTPSConnectionPool):
        ConnectionCls = WatchedHTTPS

    return {"http": HTTPPool, "https": HTTPSPool}


class _WatchedAdapter(HTTPAdapter):
    """An adapter whose sockets a watchdog can shut; optionally pinned to a host name (dial an
    IP while sending SNI and checking the certificate for the name)."""

    def __init__(self, watch: _SocketWatch, hostname: str | None = None, **kwargs: Any) -> None:
        self._watch = watch
        self._hostname = hostname
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        """Every pool of this adapter watches its sockets (and pins the host name if given)."""
        if self._hostname:
            kwargs["server_hostname"] = self._hostname
            kwargs["assert_hostname"] = self._hostname
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _pool_classes(self._watch)


def api_root(url: str) -> str:
    """The web interface URL without a trailing /api/v1 or slash."""
    url = url.rstrip("/")
    for suffix in ("/api/v1", "/api"):
        if url.lower().endswith(suffix):
            url = url[: -len(suffix)]
    return url


# --- JSON within bounds -------------------------------------------------------------------------

def json_depth(text: str, limit: int) -> int:
    """The nesting depth of a JSON text (strings ignored), counted up to ``limit + 1`` only."""
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    deepest = depth = 0
    for char in brackets:
        depth += 1 if char in "[{" else -1
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                break
    return deepest


def parse_json(data: bytes, max_depth: int, where: str) -> tuple[Any, bool]:
    """(value, True) for a JSON body, (None, False) for anything else; a body nested deeper than
    ``max_depth`` raises BudgetExceeded before the parser could recurse into it."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None, False
    if json_depth(text, max_depth) > max_depth:
        raise BudgetExceeded(f"{where}: the answer nests deeper than {max_depth} levels "
                             "(policy api.max_json_depth); not parsed")
    try:
        return json.loads(text), True
    except (ValueError, RecursionError):
        return None, False


def _over_time(where: str, limit: Deadline) -> str:
    """The line for a call stopped by a deadline: which bound, which policy leaf."""
    if limit.policy_key == "api.call_deadline_s":
        return (f"{where}: no complete answer within {limit.seconds:g} s (policy api.call_deadline_s); "
                "stopped waiting")
    return f"{where}: the {limit.seconds:g} s deadline of {limit.what} was reached (policy {limit.policy_key})"


def _earliest(first: Deadline, second: Deadline) -> Deadline:
    return first if first.remaining() <= second.remaining() else second


class SmarterMailClient:
    """A signed-in API session for one server. Use as a context manager: logout on exit."""

    def __init__(self, settings: ApiSettings, fieldmap: FieldMap,
                 session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.time,
                 deadline: Deadline | None = None) -> None:
        self.settings = settings
        self.map = fieldmap
        self.names = fieldmap.auth.fields
        self.client_id = f"mailaudit-{uuid.uuid4()}"
        self.login_facts: dict[str, Any] = {}
        self._sleep, self._clock = sleep, clock
        self._tokens: _Tokens | None = None
        self._watch = _SocketWatch()
        self._session = session or self._new_session()
        self._root, self._label, self._dial = self._prepare(settings)
        self.deadline = deadline or Deadline.never()
        register_secret(settings.password, settings.user)

    # -- plumbing ------------------------------------------------------------------------------

    def _new_session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False        # no proxies, no .netrc credentials, no CA override from env
        adapter = _WatchedAdapter(self._watch)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    def _prepare(self, settings: ApiSettings) -> tuple[str, str, tuple[str, int]]:
        """The URL to dial, the label for messages (host:port of the URL given), the address."""
        root = api_root(settings.base_url)
        parts = urlsplit(root)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ApiError(f"--api-url {settings.base_url}: expected https://host[:port]")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise ApiError(f"--api-url {settings.base_url}: the port is not a number 1-65535") from None
        label = f"{parts.hostname}:{port}"
        dial = (settings.connect_ip or parts.hostname, port)
        if settings.connect_ip and settings.connect_ip != parts.hostname:
            ip = settings.connect_ip
            host = f"[{ip}]" if ipaddress.ip_address(ip).version == 6 else ip
            netloc = f"{host}:{parts.port}" if parts.port else host
            self._session.headers["Host"] = parts.netloc.rsplit("@", 1)[-1]
            self._session.mount(f"{parts.scheme}://{netloc}", _WatchedAdapter(self._watch, parts.hostname))
            root = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
        return root, label, dial

    def _where(self, method: str, path: str) -> str:
        return f"{self._label}: {method} {path}"

    def _send(self, method: str, path: str, body: Any = None, bearer: str | None = None) -> _Answer:
        """One call within its total time (retries on 5xx/429 included); transport failures raise
        ApiError, a bound of the policy BudgetExceeded."""
        where = self._where(method, path)
        call = Deadline.after(self.settings.call_deadline_s, where, "api.call_deadline_s")
        attempts = 1 + max(0, self.settings.retries)
        for attempt in range(attempts):
            status, data, headers = self._exchange(method, path, body, bearer, _earliest(call, self.deadline))
            if status not in RETRY_STATUSES or attempt == attempts - 1:
                break
            pause = self._pause(status, headers, attempt)
            log.debug("%s -> HTTP %s, retry in %.1f s", where, status, pause)
            self._sleep(min(pause, max(0.0, _earliest(call, self.deadline).remaining())))
        log.debug("%s -> HTTP %s", where, status)
        if status in RETRY_STATUSES:
            raise RetriesExhaustedError(f"{where}: HTTP {status} after {attempts} attempts")
        value, is_json = parse_json(data, self.settings.max_json_depth, where) if data.strip() else (None, False)
        return _Answer(status, value, is_json)

    def _pause(self, status: int, headers: Any, attempt: int) -> float:
        backoff = self.settings.backoff_s * (2 ** attempt)
        retry_after = str(headers.get("Retry-After", ""))
        if status == 429 and retry_after.strip().isdigit():
            return min(float(retry_after), MAX_RETRY_AFTER_S)
        return backoff

    def _exchange(self, method: str, path: str, body: Any, bearer: str | None,
                  limit: Deadline) -> tuple[int, bytes, Any]:
        """One HTTP exchange under a watchdog: (status, body bytes, headers)."""
        headers = {"Accept": "application/json", "Accept-Encoding": "identity"}
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        read_s = limit.timeout(self.settings.timeout_s)
        timeout = (min(10.0, read_s), read_s)
        self._watch.fired.clear()
        watchdog = threading.Timer(max(0.001, limit.remaining()), self._watch.kill)
        watchdog.daemon = True
        watchdog.start()
        try:
            response = self._request(method, path, body, headers, timeout, limit)
            try:
                data = self._read(response, limit, method, path)
            finally:
                response.close()
            return response.status_code, data, response.headers
        finally:
            watchdog.cancel()

    def _request(self, method: str, path: str, body: Any, headers: dict[str, str],
                 timeout: tuple[float, float], limit: Deadline) -> requests.Response:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")     # the insecure warning: the report says it
                return self._session.request(method, self._root + path, json=body, headers=headers,
                                             timeout=timeout, verify=self.settings.verify,
                                             allow_redirects=False, stream=True)
        except requests.exceptions.RequestException as exc:
            raise self._transport_error(exc, method, path, timeout, limit) from None

    def _read(self, response: requests.Response, limit: Deadline, method: str, path: str) -> bytes:
        """The body, streamed and dropped past the policy's size cap."""
        where = self._where(method, path)
        cap = self.settings.max_response_bytes
        declared = str(response.headers.get("Content-Length", "")).strip()
        too_big = BudgetExceeded(f"{where}: the answer is larger than {cap} bytes "
                                 "(policy api.max_response_bytes); stopped reading")
        if declared.isdigit() and int(declared) > cap:
            raise too_big
        chunks, size = [], 0
        try:
            for chunk in response.iter_content(CHUNK_BYTES):
                size += len(chunk)
                if size > cap:
                    raise too_big
                chunks.append(chunk)
        except requests.exceptions.RequestException as exc:
            raise self._transport_error(exc, method, path, None, limit) from None
        return b"".join(chunks)

    def _transport_error(self, exc: Exception, method: str, path: str,
                         timeout: tuple[float, float] | None, limit: Deadline) -> ProbeError:
        """One line for a failed exchange: a bound reached, plain HTTP, TLS, timeout, refused."""
        if self._watch.fired.is_set() or limit.expired:
            return BudgetExceeded(_over_time(self._where(method, path), limit))
        if isinstance(exc, requests.exceptions.SSLError):
            if self._answers_plain_http():
                return ApiError(f"{self._label}: the API port answered plain HTTP, not TLS "
                                "(check the scheme and port of --api-url)")
            return ApiError(f"{self._label}: TLS certificate not accepted ({_reason(exc)}); "
                            "give --ca-file for a private CA")
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            return ApiError(f"{self._label}: no connection within {(timeout or (0, 0))[0]:.0f} s")
        if isinstance(exc, requests.exceptions.ReadTimeout):
            return ApiError(f"{self._where(method, path)}: no answer within {self.settings.timeout_s:g} s")
        if isinstance(exc, requests.exceptions.ConnectionError):
            return ApiError(f"{self._label}: cannot connect ({_reason(exc)})")
        return ApiError(f"{self._where(method, path)}: {_reason(exc)}")

    def _answers_plain_http(self) -> bool:
        """After a failed TLS handshake: does the port speak plain HTTP? (one short probe)"""
        host, port = self._dial
        try:
            with socket.create_connection((host, port), timeout=min(5.0, self.settings.timeout_s)) as sock:
                sock.settimeout(min(5.0, self.settings.timeout_s))
                sock.sendall(b"HEAD / HTTP/1.0\r\n\r\n")
                answer = b""
                while len(answer) < 5 and (chunk := sock.recv(5 - len(answer))):
                    answer += chunk
                return answer == b"HTTP/"
        except OSError:
            return False

    @property
    def label(self) -> str:
        """host:port of the API, for messages."""
        return self._label

    def value_of(self, data: Any, name: str, default: Any = None) -> Any:
        """A field of an answer by its client-side name (JSON name from the field map's auth.fields)."""
        return data.get(self.names[name], default) if isinstance(data, dict) else default

    def message_of(self, data: Any) -> str:
        """The envelope's ``message`` (a code such as USERNAME_OR_PASSWORD_INCORRECT), or '';
        shortened and redacted: a server may echo anything there."""
        text = self.value_of(data, "message") or ""
        text = text if isinstance(text, str) else json.dumps(text)[:MESSAGE_CHARS]
        text = " ".join(text.split())
        return redact(text[:MESSAGE_CHARS] + ("..." if len(text) > MESSAGE_CHARS else ""))

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
        if not answer.is_json or not isinstance(data, dict):
            raise ApiError(f"{who}: HTTP {answer.status} with a body that is not a JSON object")
        message = self.message_of(data)
        if message.startswith(self.map.auth.two_factor_prefix):
            raise ApiError(f"{who}: the account requires two-factor authentication; "
                           "use an audit account without 2FA")
        if self.value_of(data, "change_password_needed") or self.value_of(data, "password_expired"):
            raise ApiError(f"{who}: the account must change its password first "
                           "(sign in once in the web interface)")
        self._tokens = self._tokens_from(data, "access_token", "refresh_token", "access_expiration", who)
        self.login_facts = _facts(data)
        if self.value_of(data, "is_admin") is not True:
            role = "a domain administrator" if self.value_of(data, "is_domain_admin") else "not an administrator"
            self.logout()
            raise ApiError(f"{who}: the account is {role}; the audit reads /settings/sysadmin/* "
                           "and needs a system administrator (sysadmin endpoints answer 403)")

    def _tokens_from(self, data: Any, access: str, refresh: str, expiry: str, who: str) -> _Tokens:
        token = self.value_of(data, access)
        if not isinstance(token, str) or not token:
            raise ApiError(f"{who}: the answer has no {self.names[access]}")
        refresh_token = self.value_of(data, refresh)
        refresh_token = refresh_token if isinstance(refresh_token, str) else ""
        for secret in (token, refresh_token):
            if secret:
                register_secret(secret)
        return _Tokens(token, refresh_token, _expiry(self.value_of(data, expiry), self._clock()))

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
        except ProbeError as exc:
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


def _facts(data: dict[str, Any]) -> dict[str, Any]:
    """The sign-in answer without token material: flags and names only (e.g. canViewPasswords)."""
    return {key: value for key, value in data.items()
            if isinstance(value, (bool, int, float)) or (isinstance(value, str) and "token" not in key.lower()
                                                        and "url" not in key.lower() and len(value) <= 200)}


# --- the snapshot -----------------------------------------------------------------------------

def take_snapshot(settings: ApiSettings, fieldmap: FieldMap, server: str,
                  session: requests.Session | None = None,
                  sleep: Callable[[float], None] = time.sleep,
                  priority_domains: Iterable[str] = ()) -> ApiSnapshot:
    """Read every endpoint of the field map once (per domain where needed) and log out, within
    the policy's per-server deadline. ``priority_domains`` (the audited --domain) are always
    among the domains read when the server lists them."""
    deadline = Deadline.after(settings.server_deadline_s, f"the API probes of {server}",
                              "api.server_deadline_s")
    client = SmarterMailClient(settings, fieldmap, session=session, sleep=sleep, deadline=deadline)
    results: dict[tuple[str, str | None], EndpointResult] = {}
    by_scope = _group(fieldmap)
    for endpoint in by_scope["public"]:
        results[(endpoint.key, None)] = fetch(client, endpoint)
    with client:
        login = fieldmap.auth.login
        for endpoint in by_scope["login"]:
            results[(endpoint.key, None)] = EndpointResult(f"{login.method} {login.path}", ReadState.OK,
                                                           body=client.login_facts)
        domains, listed = _domains(client, fieldmap, results, settings.max_domains, priority_domains)
        cache: dict[tuple[str, str, str], EndpointResult] = {}
        for endpoint in by_scope["sysadmin"]:
            if (endpoint.key, None) not in results:
                results[(endpoint.key, None)] = _cached(cache, endpoint, lambda e=endpoint: fetch(client, e))
        for domain in domains:
            for endpoint in by_scope["sysadmin_domain"]:
                results[(endpoint.key, domain)] = fetch(client, endpoint, domain)
            results.update(_domain_scope(client, by_scope["domain"], domain))
    return ApiSnapshot(server=server, base_url=client.label, fieldmap=fieldmap, results=results,
                       domains=domains, user=settings.user, tls_verified=settings.verify is not False,
                       domains_listed=listed)


def _group(fieldmap: FieldMap) -> dict[str, list[Endpoint]]:
    """Endpoints by scope, keeping only those some field reads."""
    used = {f.endpoint for f in fieldmap.fields.values()}
    groups: dict[str, list[Endpoint]] = {"public": [], "login": [], "sysadmin": [], "sysadmin_domain": [],
                                         "domain": []}
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
             results: dict[tuple[str, str | None], EndpointResult], cap: int,
             priority: Iterable[str]) -> tuple[tuple[str, ...], int]:
    """The domains to read (a sample past the policy's cap) and how many the server lists.
    A 403 on the list means the account cannot audit at all."""
    endpoint = fieldmap.endpoint_of("domain_names")
    result = fetch(client, endpoint)
    results[(endpoint.key, None)] = result
    if result.state is ReadState.ERROR and result.budget:
        raise BudgetExceeded(f"{client.label}: {result.request}: {result.detail}")
    if result.state is ReadState.ERROR and "HTTP 403" in result.detail:
        raise ApiError(f"{client.label}: {result.request} answered 403: the account is not allowed "
                       "to read system-admin settings (a domain-admin token?)")
    if result.state is not ReadState.OK:
        return (), 0
    snapshot = ApiSnapshot("", client.label, fieldmap, results, (), "")
    reading = snapshot.read("domain_names")
    if not reading.ok:
        return (), 0
    names = sorted({str(item["name"]).strip().lower() for item in reading.value if str(item["name"]).strip()})
    return sample_domains(names, cap, priority), len(names)


def sample_domains(names: list[str], cap: int, priority: Iterable[str] = ()) -> tuple[str, ...]:
    """All names when at most ``cap``; else the priority names it lists plus an evenly spread
    sample of the rest (deterministic: the same list gives the same sample)."""
    if len(names) <= cap:
        return tuple(names)
    known = set(names)
    chosen = [p.lower() for p in priority if p.lower() in known][:cap]
    rest = [n for n in names if n not in chosen]
    wanted = cap - len(chosen)
    chosen += [rest[i * len(rest) // wanted] for i in range(wanted)] if wanted > 0 else []
    return tuple(sorted(set(chosen)))


def _domain_scope(client: SmarterMailClient, endpoints: list[Endpoint],
                  domain: str) -> dict[tuple[str, str | None], EndpointResult]:
    """Read a domain's domain-admin endpoints with an impersonation token."""
    if not endpoints:
        return {}
    try:
        tokens = client.impersonate(domain)
    except BudgetExceeded as exc:
        return {(e.key, domain): EndpointResult(e.describe(domain), ReadState.ERROR, detail=_tail(exc, client),
                                                budget=True) for e in endpoints}
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

    A bound of the policy (deadline, size, depth) is recorded for this endpoint and the snapshot
    goes on; other transport failures (timeout, refused connection, TLS) propagate: the server is
    unusable.
    """
    request = endpoint.describe(domain)
    try:
        answer = client.call(endpoint, domain, tokens, renew)
    except RetriesExhaustedError as exc:
        return EndpointResult(request, ReadState.ERROR, detail=_tail(exc, client))
    except BudgetExceeded as exc:
        return EndpointResult(request, ReadState.ERROR, detail=_tail(exc, client), budget=True)
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


def _tail(exc: ProbeError, client: SmarterMailClient) -> str:
    """The error line without the 'host:port: METHOD path: ' prefix (the result names the request)."""
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
