"""SmarterMail API simulator for the lab: a real HTTPS server answering like SmarterMail's /api/v1.

It follows ../shared/smartermail-api.md, quirks included:
- POST /api/v1/auth/authenticate-user returns accessToken/refreshToken/accessTokenExpiration and
  role flags; a wrong password answers 200 with success:false (or 401, per profile);
  two-factor accounts get a step token with message TWO_FACTOR_REQUIRED|...; accounts that must
  change their password get changePasswordNeeded:true and a token no endpoint accepts.
- One token set per (user, clientId): a new login with the same clientId revokes the previous.
- Bearer tokens (JWT-shaped); 401 for a missing, unknown or expired token; 403 for the wrong
  role (a domain admin on /settings/sysadmin/*, a system admin on /settings/domain/*).
- POST /api/v1/auth/refresh-token rotates: the used refresh token (and its access token) die.
- POST /api/v1/settings/sysadmin/manage-domain/{domain} hands out a domain-admin token.
- GET /api/v1/licensing/about answers without a token; `Server: Microsoft-IIS/10.0`.
- GET /api/v1/settings/password-requirements (domain-admin token) answers the effective rules
  reqCapital/reqLower/reqNumber/reqSymbol/reqNotUsername/reqLength [E3], derived from the domain's
  password settings (overrides over server defaults) unless the profile gives them.
- The login answer's canViewPasswords comes from the profile (behaviour.can_view_passwords) [C1][E4].
- Unknown paths (and a profile's `missing_endpoints`) answer 404 with an empty body.
Settings come from a profile (profiles/<name>.yaml), as the raw JSON bodies the API returns; a
profile models one build: hardened and weak follow the field map's spellings with enum names,
variant another build's paths, flat antispam keys and numeric enums (smartermail-api-evidence.md).

A fault switch for self-tests: a JSON file (--fault-file; re-read on every request) or the
``fault`` attribute of the server state, e.g. {"mode": "error500", "match": "/api/v1/settings/*"}.
Modes: slow (sleep `delay` s), error500, flaky500 (the first `times` matching requests), ratelimit
(429), malformed (200 with broken JSON), notfound (404), forbidden (403). Deterministic: no randomness.

Run: python smsim.py --profile profiles/hardened.yaml --bind 127.0.0.10 --port 443 \
        --cert CERT --key KEY [--fault-file F] [--log F]   (credentials from the environment:
        SMSIM_USER/SMSIM_PASSWORD, else MAILAUDIT_API_USER/MAILAUDIT_API_PASSWORD)
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import fnmatch
import hashlib
import hmac
import json
import os
import re
import secrets
import socket
import ssl
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

SERVER_HEADER = "Microsoft-IIS/10.0"
SYSADMIN_PREFIX = "/api/v1/settings/sysadmin/"
PASSWORD_REQUIREMENTS = "/api/v1/settings/password-requirements"
DOMAIN_PREFIX = "/api/v1/settings/domain/"
TLS_VERSIONS = {"TLSv1": ssl.TLSVersion.TLSv1, "TLSv1_1": ssl.TLSVersion.TLSv1_1,
                "TLSv1_2": ssl.TLSVersion.TLSv1_2, "TLSv1_3": ssl.TLSVersion.TLSv1_3}


# --- profile and state ------------------------------------------------------------------------

@dataclass(frozen=True)
class Account:
    """A sign-in the simulator accepts (all share the lab password)."""

    username: str
    role: str                      # sysadmin | domainadmin
    domain: str | None = None
    two_factor: bool = False
    change_password: bool = False


@dataclass
class Token:
    """An issued access or refresh token and what it allows."""

    value: str
    kind: str                      # access | refresh | step
    account: Account
    client_id: str
    expires: float
    domain: str | None = None      # the domain of a domain-admin (or impersonation) token
    impersonating: bool = False
    partner: str = ""              # access <-> refresh of the same set


@dataclass(frozen=True)
class Fault:
    """A deterministic misbehaviour for self-tests."""

    mode: str
    match: str = "/api/v1/settings/*"
    delay: float = 30.0
    times: int = 1


@dataclass
class State:
    """Everything the handlers share: profile, accounts, tokens, fault; guarded by a lock."""

    profile: dict[str, Any]
    accounts: dict[str, Account]
    password: str
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    tokens: dict[str, Token] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    fault: Fault | None = None
    fault_file: Path | None = None
    fault_hits: int = 0
    fault_seen: str = ""
    log_file: Path | None = None

    @property
    def behaviour(self) -> dict[str, Any]:
        """Token lifetimes and failure styles of this profile."""
        return self.profile.get("behaviour", {})


def load_profile(path: Path) -> dict[str, Any]:
    """Read a profile YAML (settings as raw API bodies, accounts, behaviour, TLS)."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or "about" not in data or "domains" not in data:
        raise SystemExit(f"smsim: profile {path}: needs at least 'about' and 'domains'")
    return data


def make_state(profile: dict[str, Any], user: str, password: str, fault_file: Path | None = None,
               log_file: Path | None = None) -> State:
    """Build the shared state: the admin account plus the profile's special accounts."""
    accounts = {user.lower(): Account(user, "sysadmin")}
    for entry in profile.get("accounts", []):
        account = Account(entry["username"], entry["role"], entry.get("domain"),
                          bool(entry.get("two_factor")), bool(entry.get("change_password")))
        accounts[account.username.lower()] = account
    return State(profile=profile, accounts=accounts, password=password,
                 fault_file=fault_file, log_file=log_file)


# --- tokens -----------------------------------------------------------------------------------

def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(state: State, claims: dict[str, Any]) -> str:
    """A JWT-shaped token (HS256 here; the real server uses RS256 [W1])."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64(json.dumps({**claims, "jti": secrets.token_hex(8)}).encode())
    signature = _b64(hmac.new(state.secret, f"{header}.{payload}".encode(), hashlib.sha256).digest())
    return f"{header}.{payload}.{signature}"


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def issue(state: State, account: Account, client_id: str, kind: str = "access",
          domain: str | None = None, impersonating: bool = False) -> tuple[Token, Token]:
    """Issue an access (or step) token and its refresh token; caller holds the lock."""
    now = time.time()
    access_s = float(state.behaviour.get("access_token_seconds", 900))
    refresh_s = float(state.behaviour.get("refresh_token_seconds", 86400))
    role = "DomainAdmin" if domain else ("SysAdmin" if account.role == "sysadmin" else "User")
    access = Token(_jwt(state, {"sub": account.username, "role": role, "exp": int(now + access_s)}),
                   kind, account, client_id, now + access_s, domain, impersonating)
    refresh = Token(_jwt(state, {"sub": account.username, "typ": "refresh"}), "refresh", account,
                    client_id, now + refresh_s, domain, impersonating, partner=access.value)
    access.partner = refresh.value
    state.tokens[access.value] = access
    state.tokens[refresh.value] = refresh
    return access, refresh


def revoke_client(state: State, account: Account, client_id: str) -> None:
    """Drop every token of (user, clientId); caller holds the lock [C1]."""
    for value in [v for v, t in state.tokens.items()
                  if t.account == account and t.client_id == client_id and not t.impersonating]:
        del state.tokens[value]


def token_fields(access: Token, refresh: Token) -> dict[str, Any]:
    """The token part of a login or refresh reply."""
    return {"accessToken": access.value, "refreshToken": refresh.value,
            "accessTokenExpiration": _iso(access.expires),
            "refreshTokenExpiration": _iso(refresh.expires)}


# --- responses --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Reply:
    """An HTTP reply to send: status, JSON body (or raw bytes), extra headers."""

    status: int
    body: Any = None
    raw: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()


def ok(body: dict[str, Any] | None = None) -> Reply:
    """200 with the success envelope."""
    return Reply(200, {**(body or {}), "success": True, "resultCode": 200})


def fail(status: int, message: str, http_status: int | None = None) -> Reply:
    """A failure envelope; http_status differs from resultCode for the 200+success:false quirk."""
    return Reply(http_status or status, {"success": False, "resultCode": status, "message": message})


NOT_FOUND = Reply(404, raw=b"")


# --- request handling -------------------------------------------------------------------------

class Handler(BaseHTTPRequestHandler):
    """Routes one request; every reply goes through _send."""

    protocol_version = "HTTP/1.1"
    timeout = 30
    server: SimServer

    def version_string(self) -> str:
        """The IIS front end's Server header."""
        return SERVER_HEADER

    def log_message(self, format: str, *args: Any) -> None:
        """One line per request in the log file: never headers, never bodies."""
        log = self.server.state.log_file
        line = f"{self.log_date_time_string()} {self.client_address[0]} {format % args}\n"
        if log:
            with open(log, "a", encoding="utf-8") as handle:
                handle.write(line)

    def do_GET(self) -> None:
        """GET requests."""
        self._dispatch("GET")

    def do_POST(self) -> None:
        """POST requests."""
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        body = self._read_body()
        path = self.path.split("?", 1)[0]
        fault = current_fault(self.server.state, path)
        if fault is not None and fault.mode == "slow":
            time.sleep(fault.delay)
        elif fault is not None:
            self._send(fault_reply(fault))
            return
        try:
            reply = route(self.server.state, method, path, body, self.headers.get("Authorization", ""))
        except Exception as exc:
            reply = fail(500, f"simulator error: {type(exc).__name__}")
        self._send(reply)

    def _read_body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else b""
        if not data:
            return {}
        try:
            return json.loads(data)
        except ValueError:
            return None

    def _send(self, reply: Reply) -> None:
        if reply.raw is not None:
            payload, ctype = reply.raw, "application/json; charset=utf-8"
        elif isinstance(reply.body, str):
            payload, ctype = reply.body.encode(), "text/html; charset=utf-8"
        else:
            payload, ctype = json.dumps(reply.body).encode(), "application/json; charset=utf-8"
        self.send_response(reply.status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("X-Powered-By", "ASP.NET")
        for name, value in reply.headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)


def current_fault(state: State, path: str) -> Fault | None:
    """The fault that applies to this path, if any (file re-read on every request)."""
    with state.lock:
        fault = _fault_from_file(state) if state.fault_file else state.fault
        if fault is None or not fnmatch.fnmatch(path, fault.match):
            return None
        if fault.mode == "flaky500":
            state.fault_hits += 1
            return fault if state.fault_hits <= fault.times else None
        return fault


def _fault_from_file(state: State) -> Fault | None:
    try:
        text = state.fault_file.read_text(encoding="utf-8").strip()
    except OSError:
        text = ""
    if text != state.fault_seen:
        state.fault_seen, state.fault_hits = text, 0
    if not text:
        return None
    data = json.loads(text)
    return Fault(**{k: data[k] for k in ("mode", "match", "delay", "times") if k in data})


def fault_reply(fault: Fault) -> Reply:
    """The reply a fault mode gives instead of the real one."""
    if fault.mode in ("error500", "flaky500"):
        return fail(500, "Internal Server Error")
    if fault.mode == "ratelimit":
        return Reply(429, {"success": False, "resultCode": 429, "message": "Too many requests"},
                     headers=(("Retry-After", "1"),))
    if fault.mode == "malformed":
        return Reply(200, raw=b'{"success": true, "resultCode": 200, "settings": {"trunc')
    if fault.mode == "notfound":
        return NOT_FOUND
    if fault.mode == "forbidden":
        return fail(403, "Forbidden")
    return fail(500, f"unknown fault mode {fault.mode}")


def route(state: State, method: str, path: str, body: Any, authorization: str) -> Reply:
    """Answer one request (the whole API surface the lab serves)."""
    if path in ("/", "/interface/root", "/login"):
        return Reply(200, login_page(state))
    if not path.startswith("/api/"):
        return NOT_FOUND
    if _missing(state, path):
        return NOT_FOUND
    public = PUBLIC_ROUTES.get((method, path))
    if public is not None:
        return public(state, body)
    token = bearer_token(state, authorization)
    if isinstance(token, Reply):
        return token
    if method == "POST" and path == "/api/v1/auth/logout-user":
        return logout(state, token)
    if method == "GET" and path == PASSWORD_REQUIREMENTS:
        return password_requirements(state, token)
    if path.startswith(SYSADMIN_PREFIX):
        return sysadmin_route(state, method, path[len(SYSADMIN_PREFIX):], token)
    if path.startswith(DOMAIN_PREFIX):
        return domain_route(state, method, path[len(DOMAIN_PREFIX):], token)
    return NOT_FOUND


def _missing(state: State, path: str) -> bool:
    return any(fnmatch.fnmatch(path, pattern) for pattern in state.profile.get("missing_endpoints", []))


def login_page(state: State) -> str:
    """The webmail sign-in page (port 443 is also the webmail HTTPS port of the TLS checks)."""
    build = state.profile["about"].get("version", "").rsplit(".", 1)[-1]
    return ("<!DOCTYPE html><html><head><title>SmarterMail Login</title></head><body>"
            f"<script>var stProductBuild = \"{build} (lab)\";</script>"
            "<form method=\"post\" action=\"/api/v1/auth/authenticate-user\"></form></body></html>")


def bearer_token(state: State, authorization: str) -> Token | Reply:
    """The valid access token of the request, or the 401 reply."""
    match = re.fullmatch(r"Bearer\s+(\S+)", authorization.strip(), flags=re.IGNORECASE)
    if not match:
        return fail(401, "Unauthorized")
    with state.lock:
        token = state.tokens.get(match.group(1))
        if token is None or token.kind == "refresh":
            return fail(401, "Unauthorized")
        if token.expires <= time.time():
            return fail(401, "Token has expired")
    if token.kind == "step":
        return fail(401, "TWO_FACTOR_REQUIRED" if token.account.two_factor else "CHANGE_PASSWORD_REQUIRED")
    return token


# --- auth endpoints ---------------------------------------------------------------------------

def authenticate(state: State, body: Any) -> Reply:
    """POST /api/v1/auth/authenticate-user."""
    body = body if isinstance(body, dict) else {}
    username, password = str(body.get("username") or ""), str(body.get("password") or "")
    if not username or not password:
        return fail(401, "Username or password is empty", http_status=400)
    account = state.accounts.get(username.lower())
    if account is None or not hmac.compare_digest(password.encode(), state.password.encode()):
        http = int(state.behaviour.get("login_failure_status", 200))
        return fail(401, "USERNAME_OR_PASSWORD_INCORRECT", http_status=http)
    client_id = str(body.get("clientId") or "default")
    with state.lock:
        revoke_client(state, account, client_id)
        step = account.two_factor or account.change_password
        access, refresh = issue(state, account, client_id, kind="step" if step else "access",
                                domain=account.domain if account.role == "domainadmin" else None)
    reply = {**token_fields(access, refresh),
             "username": account.username, "emailAddress": account.username if "@" in account.username else "",
             "isAdmin": account.role == "sysadmin", "isDomainAdmin": account.role == "domainadmin",
             "changePasswordNeeded": account.change_password, "passwordExpired": False,
             "isLicensed": True, "isImpersonating": False,
             "canViewPasswords": bool(state.behaviour.get("can_view_passwords", False)),
             "displayWelcomeWizard": False, "localeId": "en-US", "autoLoginToken": None}
    if account.two_factor:
        reply["message"] = f"TWO_FACTOR_REQUIRED|rfc6238|{account.username}"
        return Reply(200, {**reply, "success": True, "resultCode": 200})
    return ok(reply)


def refresh_token(state: State, body: Any) -> Reply:
    """POST /api/v1/auth/refresh-token: rotate the token set, or 401 if refused [C1]."""
    value = str((body or {}).get("token") or "") if isinstance(body, dict) else ""
    with state.lock:
        token = state.tokens.get(value)
        if token is None or token.kind != "refresh" or token.expires <= time.time():
            return fail(401, "Refresh token rejected")
        del state.tokens[value]
        state.tokens.pop(token.partner, None)
        access, refresh = issue(state, token.account, token.client_id, domain=token.domain,
                                impersonating=token.impersonating)
    return ok({**token_fields(access, refresh), "username": token.account.username,
               "isImpersonating": token.impersonating,
               "canViewPasswords": bool(state.behaviour.get("can_view_passwords", False))})


def logout(state: State, token: Token) -> Reply:
    """POST /api/v1/auth/logout-user: revoke the caller's (user, clientId) token set."""
    with state.lock:
        if token.impersonating:
            state.tokens.pop(token.value, None)
            state.tokens.pop(token.partner, None)
        else:
            revoke_client(state, token.account, token.client_id)
    return ok()


def two_factor_code(state: State, body: Any) -> Reply:
    """POST /api/v1/auth/authenticate-two-factor-code: the lab never knows the code."""
    return fail(401, "INVALID_TWO_FACTOR_CODE", http_status=200)


def about(state: State, body: Any) -> Reply:
    """GET /api/v1/licensing/about (no token needed on the observed build [W3])."""
    return Reply(200, dict(state.profile["about"]))


def login_settings(state: State, body: Any) -> Reply:
    """GET /api/v1/auth/login-settings (public [W3])."""
    return ok({"allowPasswordRecovery": False, "loginPageTitle": "SmarterMail"})


PUBLIC_ROUTES = {
    ("POST", "/api/v1/auth/authenticate-user"): authenticate,
    ("POST", "/api/v1/auth/refresh-token"): refresh_token,
    ("POST", "/api/v1/auth/authenticate-two-factor-code"): two_factor_code,
    ("GET", "/api/v1/licensing/about"): about,
    ("GET", "/api/v1/auth/login-settings"): login_settings,
}


# --- settings endpoints -----------------------------------------------------------------------

def sysadmin_route(state: State, method: str, action: str, token: Token) -> Reply:
    """/api/v1/settings/sysadmin/*: system admins only (403 for a domain-admin token [W1])."""
    if token.account.role != "sysadmin" or token.domain is not None:
        return fail(403, "Forbidden")
    domains = state.profile["domains"]
    if method == "GET" and action == "domains":
        return ok({"data": [{"name": name, "path": f"C:\\SmarterMail\\Domains\\{name}",
                             "userCount": data.get("domainData", {}).get("userCount", 0),
                             "status": "Enabled"} for name, data in domains.items()]})
    head, _, name = action.partition("/")
    if method == "GET" and head == "domain-settings" and name:
        if name not in domains:
            return fail(404, "DOMAIN_NOT_FOUND", http_status=200)
        return ok({"domainSettings": domains[name].get("domainSettings", {})})
    if method == "POST" and head == "manage-domain" and name:
        return manage_domain(state, name, token)
    data = state.profile.get("sysadmin", {}).get(action)
    if data is None or method not in _methods(state, action):
        return NOT_FOUND
    return ok(data)


def _methods(state: State, action: str) -> tuple[str, ...]:
    """GET for reads; the profile lists actions read by POST (paged lists)."""
    return ("POST",) if action in state.profile.get("post_actions", []) else ("GET",)


def manage_domain(state: State, name: str, token: Token) -> Reply:
    """POST manage-domain/{domain}: an impersonation (domain-admin) token [C4][C5][C10]."""
    if name not in state.profile["domains"]:
        return fail(400, "DOMAIN_NOT_FOUND", http_status=200)
    with state.lock:
        access, refresh = issue(state, token.account, token.client_id, domain=name, impersonating=True)
    return ok({"impersonateAccessToken": access.value, "impersonateRefreshToken": refresh.value,
               "impersonateAccessTokenExpiration": _iso(access.expires),
               "username": f"postmaster@{name}", "email": f"postmaster@{name}"})


def domain_route(state: State, method: str, action: str, token: Token) -> Reply:
    """/api/v1/settings/domain/*: the domain in the token (403 without one)."""
    if token.domain is None:
        return fail(403, "Forbidden")
    data = state.profile["domains"].get(token.domain, {})
    if method == "GET" and action == "domain":
        return ok({"domainSettings": data.get("domainSettings", {})})
    if method == "GET" and action == "data":
        return ok({"domainData": {"name": token.domain, **data.get("domainData", {})}})
    if method == "GET" and action == "password-settings":
        return ok(data.get("passwordSettings", {}))
    if method == "GET" and action == "mailing-lists/list":
        return ok({"items": data.get("mailingLists", [])})
    return NOT_FOUND


def password_requirements(state: State, token: Token) -> Reply:
    """GET /api/v1/settings/password-requirements: the rules in force for the token's domain [E3]."""
    if token.domain is None:
        return NOT_FOUND
    data = state.profile["domains"].get(token.domain, {})
    if "passwordRequirements" in data:
        return ok(dict(data["passwordRequirements"]))
    return ok(effective_requirements(data.get("passwordSettings", {})))


def effective_requirements(settings: dict[str, Any]) -> dict[str, Any]:
    """The domain's overrides over the server defaults, as password-requirements names them."""
    merged = {**settings.get("defaults", {}), **settings.get("overrides", {})}
    length = merged.get("minLength", {})
    enabled = isinstance(length, dict) and length.get("enabled")
    names = {"reqCapital": "requireCapital", "reqLower": "requireLower", "reqNumber": "requireNumber",
             "reqSymbol": "requireSymbol", "reqNotUsername": "notUsername"}
    return {**{short: bool(merged.get(long)) for short, long in names.items()},
            "reqLength": int(length.get("ruleValue", 0)) if enabled else 0}


# --- server -----------------------------------------------------------------------------------

class SimServer(ThreadingHTTPServer):
    """ThreadingHTTPServer doing the TLS handshake in the worker thread, not in accept()."""

    daemon_threads = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], state: State, context: ssl.SSLContext | None) -> None:
        super().__init__(address, Handler)
        self.state = state
        self.context = context

    def finish_request(self, request: socket.socket, client_address: Any) -> None:
        """Handshake (bounded by a timeout) and serve; handshake failures are logged quietly.
        TCP_NODELAY: headers and body leave at once (no 40 ms Nagle/delayed-ACK stall per reply)."""
        with contextlib.suppress(OSError):
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.context is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(10)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError) as exc:
            self._note(f"{client_address[0]} TLS handshake failed: {type(exc).__name__}")
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            with contextlib.suppress(OSError):
                tls.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A broken connection is one log line, not a traceback."""
        self._note(f"{client_address[0]} connection error: {sys.exc_info()[0].__name__}")

    def _note(self, line: str) -> None:
        if self.state.log_file:
            with open(self.state.log_file, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")


def tls_context(cert: Path, key: Path, profile: dict[str, Any]) -> ssl.SSLContext:
    """The listener's TLS: versions and ciphers per profile (the IIS/Schannel front end)."""
    settings = profile.get("tls", {})
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ciphers = settings.get("ciphers")
    if ciphers:
        context.set_ciphers(ciphers)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)    # the weak profile stages TLS 1.0 on purpose
        context.minimum_version = TLS_VERSIONS[settings.get("minimum_version", "TLSv1_2")]
    context.maximum_version = TLS_VERSIONS[settings.get("maximum_version", "TLSv1_3")]
    context.load_cert_chain(str(cert), str(key))
    return context


def make_server(profile: dict[str, Any], host: str, port: int, user: str, password: str,
                cert: Path | None = None, key: Path | None = None, fault_file: Path | None = None,
                log_file: Path | None = None) -> SimServer:
    """Build (not start) a simulator; without cert/key it speaks plain HTTP (unit tests only)."""
    state = make_state(profile, user, password, fault_file, log_file)
    context = tls_context(cert, key, profile) if cert and key else None
    return SimServer((host, port), state, context)


def serve_in_thread(server: SimServer) -> threading.Thread:
    """Start serve_forever in a daemon thread (for in-process tests)."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    return thread


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point used by lab/components/70-smsim.sh."""
    parser = argparse.ArgumentParser(description="SmarterMail API simulator (lab only)")
    parser.add_argument("--profile", required=True, type=Path)
    parser.add_argument("--bind", required=True)
    parser.add_argument("--also-bind", action="append", default=[], metavar="IP",
                        help="more addresses serving the same profile (the lab's fleet addresses)")
    parser.add_argument("--port", type=int, default=443)
    parser.add_argument("--cert", required=True, type=Path)
    parser.add_argument("--key", required=True, type=Path)
    parser.add_argument("--fault-file", type=Path)
    parser.add_argument("--log", type=Path)
    args = parser.parse_args(argv)
    user = os.environ.get("SMSIM_USER") or os.environ.get("MAILAUDIT_API_USER")
    password = os.environ.get("SMSIM_PASSWORD") or os.environ.get("MAILAUDIT_API_PASSWORD")
    if not user or not password:
        print("smsim: set SMSIM_USER/SMSIM_PASSWORD (or MAILAUDIT_API_USER/_PASSWORD)", file=sys.stderr)
        return 2
    profile = load_profile(args.profile)
    server = make_server(profile, args.bind, args.port, user, password,
                         args.cert, args.key, args.fault_file, args.log)
    for address in args.also_bind:  # each address a server of its own, the same profile
        serve_in_thread(make_server(profile, address, args.port, user, password, args.cert, args.key,
                                    args.fault_file, args.log))
    extra = f" (and {len(args.also_bind)} more addresses)" if args.also_bind else ""
    print(f"smsim: {args.profile.stem} on https://{args.bind}:{args.port}{extra}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever(poll_interval=0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
