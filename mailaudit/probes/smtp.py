"""A small, careful SMTP client: one dialogue, a transcript, timeouts on every read, never DATA.

This is protocol work done by hand (not smtplib) so that every reply, including multi-line and
malformed ones, lands in the transcript exactly as the server sent it, and so that the client can
refuse to ever send DATA.
"""

from __future__ import annotations

import base64
import contextlib
import socket
import ssl
import time
from dataclasses import dataclass, field

from mailaudit.errors import ConnectError, ProbeError, ProtocolError, ProtocolTimeout

FORBIDDEN_COMMANDS = ("DATA", "BDAT")  # the suite never delivers a message
MAX_REPLY_LINES = 100
MAX_LINE_BYTES = 4096
EHLO_NAME = "mailaudit.invalid"  # RFC 2606 §2: says who we are without claiming a real host


@dataclass(frozen=True)
class Reply:
    """One SMTP reply: the code and its text lines (without the code prefix)."""

    code: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        """The reply as one line, for messages."""
        return f"{self.code} " + " / ".join(self.lines)

    @property
    def positive(self) -> bool:
        """2xx: the command was accepted."""
        return 200 <= self.code < 300

    @property
    def transient(self) -> bool:
        """4xx: try again later (greylisting, rate limits)."""
        return 400 <= self.code < 500

    @property
    def permanent(self) -> bool:
        """5xx: refused."""
        return 500 <= self.code < 600


@dataclass
class Transcript:
    """What was said, in order: ``S:`` server lines, ``C:`` client lines, ``*`` notes."""

    lines: list[str] = field(default_factory=list)

    def add(self, prefix: str, text: str) -> None:
        """Record one line."""
        self.lines.append(f"{prefix} {text}")

    def since(self, mark: int) -> list[str]:
        """The lines recorded after position ``mark``."""
        return self.lines[mark:]

    def __str__(self) -> str:
        return "\n".join(self.lines)


class SmtpSession:
    """One SMTP connection to ``ip:port``; use as a context manager (QUIT and close on exit)."""

    def __init__(
        self,
        ip: str,
        port: int,
        server_name: str,
        connect_timeout: float,
        command_timeout: float,
        implicit_tls: bool = False,
    ) -> None:
        self.ip, self.port, self.server_name = ip, port, server_name
        self.connect_timeout, self.command_timeout = connect_timeout, command_timeout
        self.implicit_tls = implicit_tls
        self.transcript = Transcript()
        self.tls_version: str | None = None
        self._sock: socket.socket | None = None
        self._buffer = b""

    @property
    def where(self) -> str:
        """``ip:port`` for messages."""
        return f"{self.ip}:{self.port}"

    # -- connection --------------------------------------------------------------------------
    def connect(self) -> Reply:
        """Open the connection (TLS first on implicit-TLS ports) and read the greeting."""
        try:
            sock = socket.create_connection((self.ip, self.port), timeout=self.connect_timeout)
        except TimeoutError:
            raise ConnectError(f"{self.where}: no TCP connection within {self.connect_timeout:g} s") from None
        except ConnectionRefusedError:
            raise ConnectError(f"{self.where}: connection refused (port closed)") from None
        except OSError as exc:
            raise ConnectError(f"{self.where}: cannot connect ({exc.strerror or exc})") from None
        self._sock = sock
        self.transcript.add("*", f"connected to {self.where}")
        if self.implicit_tls:
            self._wrap_tls()
        greeting = self.read_reply(what="greeting")
        if greeting.code != 220:
            self.transcript.add("*", "greeting is not 220")
        return greeting

    def __enter__(self) -> SmtpSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Say QUIT if the connection still stands, then close it. Never raises."""
        if self._sock is None:
            return
        try:
            self._send("QUIT")
            self.read_reply(what="QUIT reply", timeout=min(self.command_timeout, 5))
        except ProbeError:
            pass
        finally:
            self._drop()

    def _drop(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        self._sock = None

    @property
    def connected(self) -> bool:
        """True while the connection is open."""
        return self._sock is not None

    # -- TLS -----------------------------------------------------------------------------------
    def starttls(self) -> Reply:
        """Ask for STARTTLS and, on 220, do the handshake (certificates are judged elsewhere)."""
        reply = self.command("STARTTLS")
        if reply.code == 220:
            self._wrap_tls()
        return reply

    def peer_certificates(self) -> tuple[bytes, ...]:
        """The DER certificates presented in the TLS handshake, leaf first (the whole chain where
        this Python exposes it: a public API from 3.13, private before; else the leaf alone)."""
        if not isinstance(self._sock, ssl.SSLSocket):
            return ()
        leaf = self._sock.getpeercert(binary_form=True)
        getter = getattr(self._sock, "get_unverified_chain", None) or getattr(
            getattr(self._sock, "_sslobj", None), "get_unverified_chain", None)
        try:
            chain = getter() if getter else None
        except (ssl.SSLError, ValueError):
            chain = None
        if not chain:
            return (leaf,) if leaf else ()
        return tuple(c if isinstance(c, bytes) else c.public_bytes(ssl._ssl.ENCODING_DER) for c in chain)

    def _wrap_tls(self) -> None:
        context = ssl.create_default_context()
        context.check_hostname = False  # this is a protocol probe; TLS-CERT-* judge certificates
        context.verify_mode = ssl.CERT_NONE
        assert self._sock is not None
        try:
            self._sock = context.wrap_socket(self._sock, server_hostname=self.server_name)
        except (ssl.SSLError, OSError) as exc:
            self._drop()
            raise ProtocolError(f"{self.where}: TLS handshake failed ({_short(exc)})") from None
        self._buffer = b""
        self.tls_version = self._sock.version()
        self.transcript.add("*", f"TLS established ({self.tls_version})")

    # -- commands ------------------------------------------------------------------------------
    def ehlo(self, name: str = EHLO_NAME) -> Reply:
        """EHLO (falls back to nothing: a server without ESMTP answers 5xx and we report that)."""
        return self.command(f"EHLO {name}")

    def command(self, line: str, shown_as: str | None = None) -> Reply:
        """Send one command line and read its reply. ``shown_as`` replaces the line in the transcript."""
        verb = line.split(" ", 1)[0].upper()
        if verb in FORBIDDEN_COMMANDS:
            raise ValueError(f"mailaudit never sends {verb}")
        self._send(line, shown_as)
        return self.read_reply(what=f"reply to {(shown_as or line).split(' ', 1)[0]}")

    def auth_plain(self, user: str, password: str) -> Reply:
        """AUTH PLAIN with an initial response; the transcript shows no credential."""
        token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        return self.command(f"AUTH PLAIN {token}", shown_as="AUTH PLAIN [redacted]")

    def _send(self, line: str, shown_as: str | None = None) -> None:
        if self._sock is None:
            raise ProtocolError(f"{self.where}: connection already closed")
        self.transcript.add("C:", shown_as or line)
        try:
            self._sock.settimeout(self.command_timeout)
            self._sock.sendall(line.encode("ascii", "strict") + b"\r\n")
        except (OSError, ssl.SSLError) as exc:
            self._drop()
            raise ProtocolError(f"{self.where}: connection lost while sending ({_short(exc)})") from None

    def read_reply(self, what: str = "reply", timeout: float | None = None) -> Reply:
        """Read one (possibly multi-line) reply within the timeout."""
        wait = self.command_timeout if timeout is None else timeout
        deadline = time.monotonic() + wait
        code, lines = None, []
        while True:
            raw = self._read_line(deadline, what, wait)
            self.transcript.add("S:", raw)
            if len(raw) < 3 or not raw[:3].isdigit():
                self._drop()
                raise ProtocolError(f"{self.where}: not an SMTP reply in {what}: {raw[:80]!r}")
            code = int(raw[:3])
            lines.append(raw[4:])
            if raw[3:4] != "-" or len(lines) >= MAX_REPLY_LINES:
                return Reply(code, tuple(lines))

    def _read_line(self, deadline: float, what: str, wait: float) -> str:
        while b"\n" not in self._buffer:
            if self._sock is None:
                raise ProtocolError(f"{self.where}: connection closed before {what}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._drop()
                raise ProtocolTimeout(f"{self.where}: no {what} within {wait:g} s")
            try:
                self._sock.settimeout(remaining)
                chunk = self._sock.recv(MAX_LINE_BYTES)
            except TimeoutError:
                self._drop()
                raise ProtocolTimeout(f"{self.where}: no {what} within {wait:g} s") from None
            except (OSError, ssl.SSLError) as exc:
                self._drop()
                raise ProtocolError(f"{self.where}: connection lost before {what} ({_short(exc)})") from None
            if not chunk:
                self._drop()
                raise ProtocolError(f"{self.where}: server closed the connection before {what}")
            self._buffer += chunk
            if len(self._buffer) > MAX_LINE_BYTES * 4 and b"\n" not in self._buffer:
                self._drop()
                raise ProtocolError(f"{self.where}: reply line too long in {what}")
        raw, _, self._buffer = self._buffer.partition(b"\n")
        return raw.rstrip(b"\r").decode("utf-8", "replace")


def capabilities(reply: Reply) -> frozenset[str]:
    """The EHLO keywords (upper-case, with their parameters) after the first line."""
    return frozenset(line.upper() for line in reply.lines[1:])


def offers(reply: Reply, keyword: str) -> bool:
    """Does this EHLO reply advertise ``keyword`` (e.g. STARTTLS, AUTH)?"""
    keyword = keyword.upper()
    return any(cap == keyword or cap.startswith(keyword + " ") or cap.startswith(keyword + "=")
               for cap in capabilities(reply))


def _short(exc: BaseException) -> str:
    text = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc)
    return str(text)[:120] or exc.__class__.__name__
