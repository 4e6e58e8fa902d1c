"""A small, careful SMTP client: one dialogue, a transcript, timeouts on every read, never DATA.

This is protocol work done by hand (not smtplib) so that every reply, including multi-line and
malformed ones, lands in the transcript exactly as the server sent it, and so that the client can
refuse to ever send DATA.

The reply parser is strict (RFC 5321 §4.2): a reply line is a code of three digits (first 2-5,
second 0-5) followed by a space, a hyphen (more lines follow) or the line end; every line of one
reply carries the same code; a reply is bounded in lines and bytes, and a line must end within a
byte bound. Anything else is a ProtocolError that ends the session, so the rest of a malformed or
oversized reply is never read as the answer to the next command.

Every blocking step takes its timeout from the dialogue's ``Deadline`` too (the SMTP family's
per-server budget), and every connection holds one of the server's ``ConnectionSlots``.

Where the server advertises PIPELINING (RFC 2920), ``SmtpSession.pipeline`` writes a group of
MAIL, RCPT and RSET commands at once and reads the replies strictly in order, one bounded reply
per command: a missing reply is a timeout, a malformed one a ProtocolError, a reply that cannot
belong to its command (a 3xx to MAIL, RCPT or RSET) or bytes left over after the last reply mean
the replies are out of step, also a ProtocolError.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import re
import socket
import ssl
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from mailaudit.budget import Deadline
from mailaudit.errors import (
    BudgetExceeded,
    ConnectError,
    PortClosed,
    ProbeError,
    ProtocolError,
    ProtocolTimeout,
)
from mailaudit.probes.smtp_budget import CONNECTIONS_KEY, ConnectionSlots

# The suite never delivers a message: DATA and BDAT (RFC 3030) carry one, BURL (RFC 4468) fetches one.
FORBIDDEN_COMMANDS = frozenset({"DATA", "BDAT", "BURL"})
# RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets with its CRLF. Real servers exceed that a
# little (long greetings, EHLO keyword lists); 8 times the limit tolerates them and bounds memory.
MAX_LINE_BYTES = 4096
# RFC 5321 §4.2.1 sets no line count; the longest real replies (EHLO) hold 10-30 lines. 100 lines
# or 64 KiB is generous for any real reply and stops a server that floods (10,000-line greetings).
MAX_REPLY_LINES = 100
MAX_REPLY_BYTES = 64 * 1024
EHLO_NAME = "mailaudit.invalid"  # RFC 2606 §2: says who we are without claiming a real host
QUIT_WAIT_S = 5.0  # how long close() waits for the QUIT reply (it decides nothing)
# RFC 2920 §3.1: only the last command of a group may change the state the client must track (EHLO,
# DATA, VRFY, EXPN, TURN, QUIT, NOOP); the suite pipelines only envelope commands.
PIPELINABLE = frozenset({"MAIL", "RCPT", "RSET"})
# RFC 2920 §3.1: a client that writes a group before reading must keep it within the TCP window,
# "usually, but not always, 4K octets", or client and server can deadlock.
PIPELINE_MAX_BYTES = 4096
CLOSING = 421  # RFC 5321 §3.8: the server is closing the transmission channel
REDACTED = "[redacted]"

# RFC 5321 §4.2: Reply-code = %x32-35 %x30-35 %x30-39, then SP textstring, "-" textstring, or CRLF.
_REPLY_LINE = re.compile(rb"([2-5][0-5][0-9])([ -]|$)")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/=]{12,}")
_FORBIDDEN_IN_LINE = ("\r", "\n", "\0")
_SLACK_S = 0.05  # a socket timeout this close to the deadline was cut by the deadline


class PeerClosed(ProtocolError):
    """The server closed the connection (or it broke) in the middle of a dialogue: a way for a
    server to stop a client, unlike a malformed reply (a plain ProtocolError)."""


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
    def intermediate(self) -> bool:
        """3xx: the server waits for more (334 in AUTH, 354 after DATA)."""
        return 300 <= self.code < 400

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


def check_command_line(line: str) -> None:
    """Refuse a command line the suite must never write: one holding CR, LF or NUL (it would
    smuggle a second command, such as DATA, behind the first) or one starting a message transfer.
    Raises ValueError: such a line is a bug of the suite, not of the server."""
    bad = next((c for c in _FORBIDDEN_IN_LINE if c in line), None)
    if bad is not None:
        raise ValueError(f"mailaudit refuses to send an SMTP line containing {bad!r}: {line[:60]!r}")
    words = line.split()
    verb = words[0].upper() if words else ""
    if verb in FORBIDDEN_COMMANDS:
        raise ValueError(f"mailaudit never sends {verb}")


def printable(text: str) -> str:
    """Server text safe for one transcript line: control characters shown as ``\\xNN``."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class SmtpSession:
    """One SMTP connection to ``ip:port``; use as a context manager (QUIT and close on exit).

    ``deadline`` bounds every blocking step (BudgetExceeded once it has passed); ``slots``, when
    given, is taken on connect and given back when the connection is dropped."""

    def __init__(
        self,
        ip: str,
        port: int,
        server_name: str,
        connect_timeout: float,
        command_timeout: float,
        implicit_tls: bool = False,
        deadline: Deadline | None = None,
        slots: ConnectionSlots | None = None,
    ) -> None:
        self.ip, self.port, self.server_name = ip, port, server_name
        self.connect_timeout, self.command_timeout = connect_timeout, command_timeout
        self.implicit_tls = implicit_tls
        self.deadline = deadline or Deadline.never()
        self.slots = slots
        self.transcript = Transcript()
        self.tls_version: str | None = None
        self.ehlo_reply: Reply | None = None  # the last EHLO reply in the current TLS state
        self._sock: socket.socket | None = None
        self._holds_slot = False
        self._buffer = b""
        self._secrets: list[str] = []
        self._unread = 0  # replies of the current pipelined group not read yet
        self._groups = 0  # pipelined groups written so far (the current one is the last)

    @property
    def where(self) -> str:
        """``ip:port`` for messages."""
        return f"{self.ip}:{self.port}"

    # -- failures --------------------------------------------------------------------------------
    def _fail(self, kind: type[ProbeError], message: str) -> ProbeError:
        """Drop the connection and build the error, with the transcript so far as evidence."""
        self._drop()
        return kind(f"{self.where}: {message}", evidence=str(self.transcript),
                    evidence_name="SMTP transcript (up to the error)")

    def _over_budget(self, waiting_for: str) -> ProbeError:
        d = self.deadline
        key = f" (policy {d.policy_key})" if d.policy_key else ""
        started = self._sock is not None or self._holds_slot
        when = f"while waiting for {waiting_for}" if started else "before connecting"
        return self._fail(BudgetExceeded, f"{d.what}: deadline of {d.seconds:g} s reached {when}{key}")

    def _deadline_cut(self) -> bool:
        """After a timeout: was the wait cut short by the deadline (rather than the step's own timeout)?"""
        return self.deadline.remaining() <= _SLACK_S

    def _step(self, wanted: float, waiting_for: str) -> float:
        """The timeout of one blocking step: ``wanted``, cut to what the deadline leaves."""
        left = self.deadline.remaining()
        if left <= 0:
            raise self._over_budget(waiting_for)
        return max(0.001, min(wanted, left))

    # -- connection --------------------------------------------------------------------------
    def connect(self) -> Reply:
        """Open the connection (TLS first on implicit-TLS ports) and read the greeting.
        A refused connection raises PortClosed; any other failure to connect ConnectError."""
        self._take_slot()
        try:
            sock = socket.create_connection((self.ip, self.port),
                                            timeout=self._step(self.connect_timeout, "the TCP connection"))
        except ConnectionRefusedError:
            raise self._fail(PortClosed, "connection refused (port closed)") from None
        except TimeoutError:
            if self._deadline_cut():
                raise self._over_budget("the TCP connection") from None
            raise self._fail(ConnectError, f"no TCP connection within {self.connect_timeout:g} s") from None
        except OSError as exc:
            raise self._fail(ConnectError, f"cannot connect ({exc.strerror or exc})") from None
        self._sock = sock
        self.transcript.add("*", f"connected to {self.where}")
        if self.implicit_tls:
            self._wrap_tls()
        greeting = self.read_reply(what="greeting")
        if greeting.code != 220:
            self.transcript.add("*", "greeting is not 220")
        return greeting

    def _take_slot(self) -> None:
        """Wait for one of the server's connection slots. The other dialogues holding them end by
        the shared deadline at the latest, so the wait lasts up to the deadline (without a
        deadline: up to the connect timeout)."""
        if self.slots is None or self._holds_slot:
            return
        left = self.deadline.remaining()
        wait = self._step(left if left != float("inf") else self.connect_timeout, "a free connection slot")
        if not self.slots.acquire(wait):
            if self._deadline_cut():
                raise self._over_budget("a free connection slot")
            raise self._fail(BudgetExceeded, f"no free connection slot within {wait:g} s: {self.slots.limit} "
                                              f"connection(s) to this server already open (policy {CONNECTIONS_KEY})")
        self._holds_slot = True

    def __enter__(self) -> SmtpSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Say QUIT if the connection still stands and time is left, then close it. Never raises."""
        if self._sock is None or self._unread:
            self._drop()
            return
        try:
            if not self.deadline.expired:
                self._send("QUIT")
                self.read_reply(what="QUIT reply", timeout=min(self.command_timeout, QUIT_WAIT_S))
        except ProbeError:
            pass
        finally:
            self._drop()

    def _drop(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        self._sock = None
        if self._holds_slot and self.slots is not None:
            self._holds_slot = False
            self.slots.release()

    @property
    def connected(self) -> bool:
        """True while the connection is open."""
        return self._sock is not None

    # -- TLS -----------------------------------------------------------------------------------
    def starttls(self) -> Reply:
        """Ask for STARTTLS and, on 220, do the handshake (certificates are judged elsewhere)."""
        reply = self.command("STARTTLS")
        if reply.code == 220:
            if self._buffer:
                # RFC 3207 §5: nothing sent before the handshake may be trusted afterwards.
                self.transcript.add("*", f"discarded {len(self._buffer)} bytes the server sent after "
                                         "its 220 to STARTTLS, before the TLS handshake")
            self._wrap_tls()
            self.ehlo_reply = None  # RFC 3207 §4.2: forget what the server said before TLS
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
        context = _probe_context()
        assert self._sock is not None
        try:
            self._sock.settimeout(self._step(self.command_timeout, "the TLS handshake"))
            self._sock = context.wrap_socket(self._sock, server_hostname=self.server_name)
        except (ssl.SSLError, OSError) as exc:
            if self._deadline_cut():
                raise self._over_budget("the TLS handshake") from None
            raise self._fail(ProtocolError, f"TLS handshake failed ({_short(exc)})") from None
        self._buffer = b""
        self.tls_version = self._sock.version()
        self.transcript.add("*", f"TLS established ({self.tls_version})")

    # -- commands ------------------------------------------------------------------------------
    def ehlo(self, name: str = EHLO_NAME) -> Reply:
        """EHLO (falls back to nothing: a server without ESMTP answers 5xx and we report that)."""
        self.ehlo_reply = self.command(f"EHLO {name}")
        return self.ehlo_reply

    @property
    def pipelining(self) -> bool:
        """The server advertised PIPELINING (RFC 2920) in its last EHLO reply of this TLS state."""
        return self.ehlo_reply is not None and self.ehlo_reply.positive and offers(self.ehlo_reply, "PIPELINING")

    def command(self, line: str, shown_as: str | None = None) -> Reply:
        """Send one command line and read its reply. ``shown_as`` replaces the line in the transcript."""
        self._send(line, shown_as)
        return self.read_reply(what=f"reply to {(shown_as or line).split(' ', 1)[0]}")

    def auth_plain(self, user: str, password: str) -> Reply:
        """AUTH PLAIN with an initial response; neither the transcript nor any reply text (a server
        may echo what it got) shows the credential."""
        token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        self._secrets.extend(s for s in (token, password) if len(s) >= 4)
        return self.command(f"AUTH PLAIN {token}", shown_as="AUTH PLAIN [redacted]")

    def _send(self, line: str, shown_as: str | None = None) -> None:
        check_command_line(line)
        self._refuse_while_unread()
        data = line.encode("ascii", "strict") + b"\r\n"
        if self._sock is None:
            raise self._fail(PeerClosed, "connection already closed")
        self.transcript.add("C:", shown_as or line)
        self._write(data, (shown_as or line).split(" ", 1)[0])

    def _write(self, data: bytes, what: str) -> None:
        assert self._sock is not None
        try:
            self._sock.settimeout(self._step(self.command_timeout, f"sending {what}"))
            self._sock.sendall(data)
        except (OSError, ssl.SSLError) as exc:
            if self._deadline_cut():
                raise self._over_budget(f"sending {what}") from None
            raise self._fail(PeerClosed, f"connection lost while sending ({_short(exc)})") from None

    def _refuse_while_unread(self) -> None:
        if self._unread and self._sock is not None:
            raise ValueError("mailaudit writes no command while replies of a pipelined group are unread")

    # -- pipelining (RFC 2920) -------------------------------------------------------------------
    def pipeline(self, lines: Sequence[str]) -> Iterator[Reply]:
        """Write ``lines`` (MAIL, RCPT and RSET only) in one send, then yield their replies in order.

        Each reply is read like any other (strict, bounded, within the command timeout); the
        transcript shows each command followed by its reply, after a note naming the group. The
        replies stop early after a 421 (the server is closing). A reply that cannot answer its
        command, or bytes left over after the last reply, raise a ProtocolError: the replies are
        out of step and none of the group can be trusted. If the caller stops reading before the
        end, the connection is dropped, so no reply of the group can answer a later command."""
        data = self._group_bytes(lines)
        if self._sock is None:
            raise self._fail(PeerClosed, "connection already closed")
        if self._buffer:
            raise self._fail(ProtocolError, f"{len(self._buffer)} bytes arrived that answer no command, before "
                                            "a pipelined group: the replies would be out of step")
        verbs = [line.split(" ", 1)[0].split(":", 1)[0].upper() for line in lines]
        self._write(data, "a pipelined group")
        self._unread = len(lines)
        self._groups += 1
        self.transcript.add("*", f"pipelined (RFC 2920): {len(lines)} commands in one write "
                                 f"({' '.join(verbs)}); each reply is shown under its command")
        return self._group_replies(lines, verbs, self._groups)

    def _group_bytes(self, lines: Sequence[str]) -> bytes:
        """The group as bytes, refused (ValueError: a bug of the suite) unless the server offers
        PIPELINING, every command may be pipelined, and the group fits the RFC 2920 window."""
        if not self.pipelining:
            raise ValueError("mailaudit pipelines only where the server advertises PIPELINING (RFC 2920 §3.1)")
        self._refuse_while_unread()
        for line in lines:
            check_command_line(line)
            verb = line.split(" ", 1)[0].split(":", 1)[0].upper()
            if verb not in PIPELINABLE:
                raise ValueError(f"mailaudit pipelines only {', '.join(sorted(PIPELINABLE))}, not {verb}")
        data = b"".join(line.encode("ascii", "strict") + b"\r\n" for line in lines)
        if not lines or len(data) > PIPELINE_MAX_BYTES:
            raise ValueError(f"a pipelined group must hold 1 to {PIPELINE_MAX_BYTES} bytes, not {len(data)}")
        return data

    def _group_replies(self, lines: Sequence[str], verbs: list[str], group: int) -> Iterator[Reply]:
        closing = False
        try:
            for number, (line, verb) in enumerate(zip(lines, verbs, strict=True), start=1):
                self.transcript.add("C:", line)
                reply = self.read_reply(what=f"reply to {verb} ({number} of {len(lines)} pipelined)")
                self._unread -= 1
                self._check_step(verb, reply, number == len(lines))
                closing = reply.code == CLOSING
                yield reply
                if closing:
                    return
        finally:
            if group == self._groups and self._unread and self._sock is not None:
                why = "the server is closing (421)" if closing else "the reading stopped"
                self.transcript.add("*", f"{self._unread} pipelined commands left unanswered, {why}: "
                                         "connection dropped")
                self._drop()
            if group == self._groups:
                self._unread = 0

    def _check_step(self, verb: str, reply: Reply, last: bool) -> None:
        """Does ``reply`` fit its command? RFC 5321 §4.3.2 gives MAIL, RCPT and RSET no 3xx reply
        (a 354 would answer DATA). RSET is not held to its 250: a server requiring TLS answers it
        530 (RFC 3207 §4), one that blocks the client refuses everything. After the last reply
        nothing may be left over."""
        if reply.intermediate:
            raise self._fail(ProtocolError, f"{verb} answered {reply.text[:80]} in a pipelined group: no reply to "
                                            f"{verb} (RFC 5321 §4.3.2), the replies are out of step")
        if last and self._buffer:
            raise self._fail(ProtocolError, f"{len(self._buffer)} bytes more than one reply per command "
                                            "arrived for a pipelined group: the replies are out of step")

    def error(self, kind: type[ProbeError], message: str) -> ProbeError:
        """Drop the connection and build an error naming ``ip:port``, the transcript as evidence."""
        return self._fail(kind, message)

    # -- replies -------------------------------------------------------------------------------
    def read_reply(self, what: str = "reply", timeout: float | None = None) -> Reply:
        """Read one (possibly multi-line) reply within the timeout, strictly per RFC 5321 §4.2."""
        wait = self.command_timeout if timeout is None else timeout
        until = time.monotonic() + wait
        code: int | None = None
        lines: list[str] = []
        size = 0
        while True:
            raw = self._read_line(until, what, wait)
            size += len(raw) + 2
            text = printable(self._scrub(raw.decode("utf-8", "replace")))
            self.transcript.add("S:", text)
            match = _REPLY_LINE.match(raw)
            if match is None:
                raise self._fail(ProtocolError, f"not an SMTP reply line in {what} (RFC 5321 §4.2: three digits "
                                                f"2xx-5xx, then space, hyphen or line end): {text[:80]!r}")
            this = int(match.group(1))
            if code is not None and this != code:
                raise self._fail(ProtocolError, f"mixed reply codes {code} and {this} in one multi-line {what} "
                                                "(RFC 5321 §4.2.1: every line carries the same code)")
            code = this
            lines.append(text[4:])
            if match.group(2) != b"-":
                return Reply(code, tuple(lines))
            if len(lines) >= MAX_REPLY_LINES or size > MAX_REPLY_BYTES:
                raise self._fail(ProtocolError, f"{what} longer than {MAX_REPLY_LINES} lines or "
                                                f"{MAX_REPLY_BYTES // 1024} KiB: not read further")

    def _read_line(self, until: float, what: str, wait: float) -> bytes:
        """One line without its CRLF (a bare LF is taken as the end too), at most MAX_LINE_BYTES."""
        while True:
            end = self._buffer.find(b"\n")
            if end > MAX_LINE_BYTES or (end < 0 and len(self._buffer) > MAX_LINE_BYTES):
                raise self._fail(ProtocolError, f"no line end within {MAX_LINE_BYTES} bytes in {what} "
                                                "(RFC 5321 §4.5.3.1.5 allows 512)")
            if end >= 0:
                line, self._buffer = self._buffer[:end], self._buffer[end + 1:]
                return line.removesuffix(b"\r")
            self._receive(until, what, wait)

    def _receive(self, until: float, what: str, wait: float) -> None:
        if self._sock is None:
            raise self._fail(PeerClosed, f"connection closed before {what}")
        left = until - time.monotonic()
        if left <= 0:
            raise self._fail(ProtocolTimeout, f"no {what} within {wait:g} s")
        try:
            self._sock.settimeout(self._step(left, what))
            chunk = self._sock.recv(MAX_LINE_BYTES)
        except TimeoutError:
            if self._deadline_cut():
                raise self._over_budget(what) from None
            raise self._fail(ProtocolTimeout, f"no {what} within {wait:g} s") from None
        except (OSError, ssl.SSLError) as exc:
            raise self._fail(PeerClosed, f"connection lost before {what} ({_short(exc)})") from None
        if not chunk:
            raise self._fail(PeerClosed, f"server closed the connection before {what}")
        self._buffer += chunk

    def _scrub(self, text: str) -> str:
        """Server text without any credential this session sent (a server may echo it, whole or cut)."""
        if not self._secrets:
            return text
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return _BASE64_RUN.sub(lambda m: REDACTED if any(m.group() in s for s in self._secrets) else m.group(),
                               text)


@functools.cache
def _probe_context() -> ssl.SSLContext:
    """One client context for every session: this is a protocol probe (TLS-CERT-* judge the
    certificates), so nothing is verified and no trust store is loaded (loading the system's on
    every session cost more CPU than the handshake)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


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
