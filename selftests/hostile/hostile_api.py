"""A hostile SmarterMail API for the self-tests: a tiny HTTPS (or plain HTTP) server that signs the
client in like the real API and then misbehaves in exactly one way.

It speaks just enough HTTP/1.1 by hand (one request per connection, ``Connection: close``) so it
can trickle bytes, stream a 100 MB body without holding it, or answer plain HTTP on the TLS port.
Tokens are random, not JWT-shaped: only their registration with the redaction can hide them.

Behaviours (``HostileApi(behaviour=...)``):
  echo_token_403     every settings read but the domain list: 403 whose message quotes the bearer
                     token (without the word "Bearer")
  password_as_value  the API password (given to the server) comes back as setting values
  trickle            the sign-in answer arrives one byte every ``pace`` seconds
  huge               the domain list is ``huge_bytes`` of JSON, streamed without Content-Length
  deep               the domain list nests ``depth`` arrays
  many_domains       the domain list has ``domains`` names; every per-domain read answers at once
  slow_all           every settings read answers after ``pace`` seconds (within a call's bound)
  plain_http         no TLS at all: plain HTTP on the API port
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BEHAVIOURS = ("echo_token_403", "password_as_value", "trickle", "huge", "deep", "many_domains",
              "slow_all", "plain_http")
HEADER_LIMIT = 65536


@dataclass
class Hostile:
    """What a hostile server does and what it saw."""

    behaviour: str
    password: str = ""
    pace: float = 2.0
    huge_bytes: int = 100_000_000
    depth: int = 100_000
    domains: int = 100_000
    issued: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def token(self) -> str:
        """A fresh random token (recorded, so a test can look for it in every output)."""
        value = "hx" + secrets.token_urlsafe(24)
        with self.lock:
            self.issued.append(value)
        return value


# --- one exchange -------------------------------------------------------------------------------

def _read_request(conn: socket.socket) -> tuple[str, str, dict[str, str], bytes] | None:
    """Method, path, headers (lower-case names) and body of one request; None when it closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk or len(data) > HEADER_LIMIT:
            return None
        data += chunk
        if not re.match(rb"[A-Z]{1,10}( |$)", data[:11]):     # not HTTP (a TLS ClientHello): a 400,
            conn.sendall(_head(400, 0))                       # as web servers answer garbage
            return None
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) < 2:
        return None
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0") or 0)
    while len(body) < length:
        chunk = conn.recv(4096)
        if not chunk:
            break
        body += chunk
    return parts[0], parts[1].split("?", 1)[0], headers, body


def _head(status: int, length: int | None = None) -> bytes:
    reason = {200: "OK", 403: "Forbidden", 404: "Not Found", 400: "Bad Request"}.get(status, "Status")
    lines = [f"HTTP/1.1 {status} {reason}", "Content-Type: application/json; charset=utf-8",
             "Server: Microsoft-IIS/10.0", "Connection: close"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _send_json(conn: socket.socket, status: int, body: Any) -> None:
    payload = json.dumps(body).encode() if body is not None else b""
    conn.sendall(_head(status, len(payload)) + payload)


def _ok(body: dict[str, Any] | None = None) -> dict[str, Any]:
    return {**(body or {}), "success": True, "resultCode": 200}


def _login_body(hostile: Hostile) -> dict[str, Any]:
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    return _ok({"accessToken": hostile.token(), "refreshToken": hostile.token(), "accessTokenExpiration": expires,
                "isAdmin": True, "isDomainAdmin": False, "canViewPasswords": False, "username": "audit"})


# --- behaviours -----------------------------------------------------------------------------------

def handle(conn: socket.socket, hostile: Hostile) -> None:
    """Serve one request of a hostile server."""
    request = _read_request(conn)
    if request is None:
        return
    method, path, headers, _ = request
    with hostile.lock:
        hostile.requests.append(f"{method} {path}")
    bearer = re.sub(r"(?i)^bearer\s+", "", headers.get("authorization", ""))
    if path == "/api/v1/auth/authenticate-user":
        if hostile.behaviour == "trickle":
            _trickle(conn, json.dumps(_login_body(hostile)).encode(), hostile.pace)
        else:
            _send_json(conn, 200, _login_body(hostile))
        return
    if path in ("/api/v1/auth/logout-user", "/api/v1/auth/refresh-token"):
        _send_json(conn, 200, _login_body(hostile) if "refresh" in path else _ok())
        return
    if path == "/api/v1/licensing/about":
        version = hostile.password if hostile.behaviour == "password_as_value" else "100.0.9600"
        _send_json(conn, 200, {"version": version})
        return
    if path.startswith("/api/v1/settings/sysadmin/manage-domain/"):
        _send_json(conn, 200, _ok({"impersonateAccessToken": hostile.token(),
                                   "impersonateRefreshToken": hostile.token()}))
        return
    _settings(conn, hostile, path, bearer)


def _settings(conn: socket.socket, hostile: Hostile, path: str, bearer: str) -> None:
    behaviour = hostile.behaviour
    if behaviour == "echo_token_403" and path != "/api/v1/settings/sysadmin/domains":
        _send_json(conn, 403, {"success": False, "resultCode": 403,
                               "message": f"access with token {bearer} is not allowed for {path}"})
        return
    if behaviour == "slow_all":
        time.sleep(hostile.pace)
    if path == "/api/v1/settings/sysadmin/domains":
        _domains(conn, hostile)
        return
    if path.startswith("/api/v1/settings/sysadmin/domain-settings/") and behaviour == "password_as_value":
        _send_json(conn, 200, _ok({"domainSettings": {
            "requireSmtpAuthentication": hostile.password, "catchAll": hostile.password,
            "twoFactorSettings": {"setting": hostile.password}, "bypassForwardBlackList": False}}))
        return
    if path.startswith("/api/v1/settings/sysadmin/domain-settings/"):
        _send_json(conn, 200, _ok({"domainSettings": {"requireSmtpAuthentication": True, "catchAll": "",
                                                      "bypassForwardBlackList": False,
                                                      "twoFactorSettings": {"setting": "1"}}}))
        return
    conn.sendall(_head(404, 0))


def _domains(conn: socket.socket, hostile: Hostile) -> None:
    if hostile.behaviour == "huge":
        conn.sendall(_head(200))             # no Content-Length: the client must stop on its own
        conn.sendall(b'{"success": true, "data": [')
        row = b'{"name": "' + b"x" * 1000 + b'.test"},'
        for _ in range(hostile.huge_bytes // len(row)):
            conn.sendall(row * 1)
        conn.sendall(b'{"name": "end.test"}]}')
        return
    if hostile.behaviour == "deep":
        body = b'{"success": true, "data": ' + b"[" * hostile.depth + b"]" * hostile.depth + b"}"
        conn.sendall(_head(200, len(body)) + body)
        return
    count = hostile.domains if hostile.behaviour == "many_domains" else 1
    names = [{"name": f"d{i:06d}.hostile.test"} for i in range(count)]
    if hostile.behaviour != "many_domains":
        names = [{"name": "hostile.test"}]
    _send_json(conn, 200, _ok({"data": names}))


def _trickle(conn: socket.socket, body: bytes, pace: float) -> None:
    """Headers at once, then the body one byte every ``pace`` seconds."""
    conn.sendall(_head(200, len(body)))
    for byte in body:
        conn.sendall(bytes([byte]))
        time.sleep(pace)


# --- the server -----------------------------------------------------------------------------------

@dataclass
class RunningHostile:
    """A started hostile API: its URL and its state."""

    url: str
    ip: str
    port: int
    hostile: Hostile


@contextmanager
def hostile_api(ip: str, hostile: Hostile, cert: Path | None = None, key: Path | None = None,
                port: int = 0) -> Iterator[RunningHostile]:
    """Serve ``hostile`` on ip:port (0: a free port) over HTTPS with cert/key (plain HTTP for the
    plain_http behaviour, or without a certificate)."""
    context = None
    if cert and key and hostile.behaviour != "plain_http":
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert), str(key))

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            conn = self.request
            conn.settimeout(30)
            with contextlib.suppress(OSError, ssl.SSLError):
                if context is not None:
                    conn = context.wrap_socket(conn, server_side=True)
                handle(conn, hostile)
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_WR)

    class Server(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True

    server = Server((ip, port), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    scheme = "https" if context is not None or hostile.behaviour == "plain_http" else "http"
    actual = server.server_address[1]
    try:
        yield RunningHostile(f"{scheme}://{ip}:{actual}", ip, actual, hostile)
    finally:
        server.shutdown()
        server.server_close()
