"""The TLS pre-flight of one port: TCP, the STARTTLS dialogue where the service uses one, one handshake.

sslyze reports a closed port, a missing STARTTLS, a port that speaks no TLS and a silent port
alike ("could not find a TLS version"), after trying every version with retries. One short
pre-flight per port tells them apart with one plain line and a transcript, so only ports that
really speak TLS are handed to sslyze. Network I/O only; every socket operation has a timeout.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from dataclasses import dataclass
from enum import StrEnum

from mailaudit.probes.smtp import EHLO_NAME

MAX_LINE = 4096
MAX_REPLY_LINES = 100
SHOWN_BYTES = 60


class PortState(StrEnum):
    """What the pre-flight (and then sslyze) found on a port."""

    OPEN = "open"                                  # TLS handshake completed (after STARTTLS where used)
    CLOSED = "closed"                              # connection refused: nothing listens
    UNREACHABLE = "unreachable"                    # TCP connect timed out or failed
    DIALOGUE_FAILED = "dialogue_failed"            # greeting/EHLO/CAPABILITY missing, late or refused
    STARTTLS_NOT_OFFERED = "starttls_not_offered"  # the capability list lacks STARTTLS/STLS
    STARTTLS_REFUSED = "starttls_refused"          # the STARTTLS command was answered with an error
    NO_TLS = "no_tls"                              # the peer answered something that is not TLS
    HANDSHAKE_TIMEOUT = "handshake_timeout"        # the peer did not answer the ClientHello in time
    HANDSHAKE_FAILED = "handshake_failed"          # TLS alert or close during the handshake
    NOT_PROBED = "not_probed"                      # the scan's deadline came before the pre-flight


@dataclass(frozen=True)
class Preflight:
    """The pre-flight of one port: its state, one plain line, the dialogue, the negotiated TLS."""

    state: PortState
    detail: str
    transcript: str = ""
    negotiated: str = ""  # e.g. "TLSv1.3 TLS_AES_256_GCM_SHA384"


class _DialogueError(Exception):
    """The plaintext dialogue before TLS failed; carries the state and one line."""

    def __init__(self, state: PortState, detail: str) -> None:
        super().__init__(detail)
        self.state = state
        self.detail = detail


class _Lines:
    """Line-based plaintext dialogue with a per-read timeout, recorded as a transcript."""

    def __init__(self, sock: socket.socket, timeout_s: float, transcript: list[str]) -> None:
        self.sock = sock
        self.timeout_s = timeout_s
        self.transcript = transcript
        self.buffer = b""

    def send(self, line: str) -> None:
        self.transcript.append(f"C: {line}")
        self.sock.settimeout(self.timeout_s)
        self.sock.sendall(line.encode("ascii") + b"\r\n")

    def read_line(self, waiting_for: str) -> str:
        deadline = time.monotonic() + self.timeout_s
        while b"\n" not in self.buffer:
            if len(self.buffer) > MAX_LINE:
                raise _DialogueError(PortState.DIALOGUE_FAILED, f"{waiting_for}: line longer than {MAX_LINE} bytes")
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(MAX_LINE)
            except TimeoutError:
                raise _DialogueError(PortState.DIALOGUE_FAILED,
                                     f"no {waiting_for} within {self.timeout_s:g} s") from None
            except OSError as exc:
                raise _DialogueError(PortState.DIALOGUE_FAILED,
                                     f"connection lost waiting for {waiting_for} ({exc.strerror or exc})") from None
            if not chunk:
                raise _DialogueError(PortState.DIALOGUE_FAILED,
                                     f"connection closed waiting for {waiting_for}")
            self.buffer += chunk
        raw, _, self.buffer = self.buffer.partition(b"\n")
        line = raw.rstrip(b"\r").decode("utf-8", "replace")
        self.transcript.append(f"S: {line}")
        return line


def preflight(ip: str, port: int, sni: str, starttls: str | None, timeout_s: float) -> Preflight:
    """Connect, run the STARTTLS dialogue (if any) and one TLS handshake; never raises."""
    transcript: list[str] = []
    try:
        sock = socket.create_connection((ip, port), timeout=timeout_s)
    except ConnectionRefusedError:
        return Preflight(PortState.CLOSED, "connection refused")
    except TimeoutError:
        return Preflight(PortState.UNREACHABLE, f"no TCP connection within {timeout_s:g} s")
    except OSError as exc:
        return Preflight(PortState.UNREACHABLE, f"TCP connection failed ({exc.strerror or exc})")
    with sock:
        try:
            if starttls:
                _STARTTLS[starttls](_Lines(sock, timeout_s, transcript))
        except _DialogueError as exc:
            return Preflight(exc.state, exc.detail, "\n".join(transcript))
        except OSError as exc:
            return Preflight(PortState.DIALOGUE_FAILED, f"connection lost ({exc.strerror or exc})",
                             "\n".join(transcript))
        result = _handshake(sock, sni, timeout_s, after_starttls=bool(starttls))
    transcript.append(f"TLS: {result.detail}")
    return Preflight(result.state, result.detail, "\n".join(transcript), result.negotiated)


# --- STARTTLS dialogues ----------------------------------------------------------------------------

def _smtp_reply(lines: _Lines, waiting_for: str) -> tuple[int, list[str]]:
    """One (multi-line) SMTP reply: its code and its lines."""
    replies = []
    while len(replies) < MAX_REPLY_LINES:
        line = lines.read_line(waiting_for)
        replies.append(line)
        if len(line) < 4 or line[3] != "-":
            break
    code = replies[0][:3]
    if not code.isdigit():
        raise _DialogueError(PortState.NO_TLS if waiting_for == "greeting" else PortState.DIALOGUE_FAILED,
                             f"not an SMTP {waiting_for}: {replies[0][:SHOWN_BYTES]!r}")
    return int(code), replies


def _smtp_starttls(lines: _Lines) -> None:
    """Greeting, EHLO, STARTTLS advertised, STARTTLS answered 220 (RFC 3207 §4)."""
    code, reply = _smtp_reply(lines, "greeting")
    if code != 220:
        raise _DialogueError(PortState.DIALOGUE_FAILED, f"greeting was {reply[0]!r}, not 220")
    lines.send(f"EHLO {EHLO_NAME}")
    code, reply = _smtp_reply(lines, "EHLO reply")
    if code != 250:
        raise _DialogueError(PortState.DIALOGUE_FAILED, f"EHLO answered {reply[0]!r}")
    keywords = [line[4:].split(" ")[0].upper() for line in reply[1:]]
    if "STARTTLS" not in keywords:
        raise _DialogueError(PortState.STARTTLS_NOT_OFFERED,
                             f"STARTTLS not advertised in the EHLO reply (keywords: {', '.join(keywords) or 'none'})")
    lines.send("STARTTLS")
    code, reply = _smtp_reply(lines, "STARTTLS reply")
    if code != 220:
        raise _DialogueError(PortState.STARTTLS_REFUSED, f"STARTTLS answered {reply[0]!r}, not 220")


def _imap_starttls(lines: _Lines) -> None:
    """Greeting, CAPABILITY lists STARTTLS, STARTTLS answered OK (RFC 2595 §3.1, RFC 9051 §6.2.1)."""
    greeting = lines.read_line("greeting")
    if not greeting.upper().startswith("* OK"):
        state = PortState.NO_TLS if not greeting.startswith("* ") else PortState.DIALOGUE_FAILED
        raise _DialogueError(state, f"IMAP greeting was {greeting[:SHOWN_BYTES]!r}, not '* OK'")
    lines.send("A1 CAPABILITY")
    capabilities = _imap_until_tagged(lines, "A1", "CAPABILITY reply")
    if "STARTTLS" not in capabilities:
        raise _DialogueError(PortState.STARTTLS_NOT_OFFERED,
                             f"STARTTLS not in the IMAP CAPABILITY list ({' '.join(capabilities) or 'empty'})")
    lines.send("A2 STARTTLS")
    status = _imap_tagged_status(lines, "A2", "STARTTLS reply")
    if not status.upper().startswith("A2 OK"):
        raise _DialogueError(PortState.STARTTLS_REFUSED, f"STARTTLS answered {status!r}, not OK")


def _imap_until_tagged(lines: _Lines, tag: str, waiting_for: str) -> list[str]:
    """Read untagged lines up to the tagged status; return the CAPABILITY words (upper-case)."""
    words: list[str] = []
    for _ in range(MAX_REPLY_LINES):
        line = lines.read_line(waiting_for)
        if line.upper().startswith("* CAPABILITY"):
            words = line.upper().split()[2:]
        elif line.startswith(f"{tag} "):
            if not line.upper().startswith(f"{tag} OK"):
                raise _DialogueError(PortState.DIALOGUE_FAILED, f"CAPABILITY answered {line!r}")
            return words
    raise _DialogueError(PortState.DIALOGUE_FAILED, f"no tagged {waiting_for} after {MAX_REPLY_LINES} lines")


def _imap_tagged_status(lines: _Lines, tag: str, waiting_for: str) -> str:
    for _ in range(MAX_REPLY_LINES):
        line = lines.read_line(waiting_for)
        if line.startswith(f"{tag} "):
            return line
    raise _DialogueError(PortState.DIALOGUE_FAILED, f"no tagged {waiting_for} after {MAX_REPLY_LINES} lines")


def _pop3_starttls(lines: _Lines) -> None:
    """Greeting, CAPA lists STLS, STLS answered +OK (RFC 2595 §4)."""
    greeting = lines.read_line("greeting")
    if not greeting.startswith("+OK"):
        state = PortState.NO_TLS if not greeting.startswith("-ERR") else PortState.DIALOGUE_FAILED
        raise _DialogueError(state, f"POP3 greeting was {greeting[:SHOWN_BYTES]!r}, not '+OK'")
    lines.send("CAPA")
    first = lines.read_line("CAPA reply")
    capabilities: list[str] = []
    if first.startswith("+OK"):
        for _ in range(MAX_REPLY_LINES):
            line = lines.read_line("CAPA list")
            if line == ".":
                break
            capabilities.append(line.split(" ")[0].upper())
    if "STLS" not in capabilities:
        raise _DialogueError(PortState.STARTTLS_NOT_OFFERED,
                             f"STLS not in the POP3 CAPA list ({' '.join(capabilities) or first!r})")
    lines.send("STLS")
    status = lines.read_line("STLS reply")
    if not status.startswith("+OK"):
        raise _DialogueError(PortState.STARTTLS_REFUSED, f"STLS answered {status!r}, not +OK")


_STARTTLS = {"smtp": _smtp_starttls, "imap": _imap_starttls, "pop3": _pop3_starttls}


# --- one TLS handshake -----------------------------------------------------------------------------

@dataclass(frozen=True)
class _Handshake:
    state: PortState
    detail: str
    negotiated: str = ""


def _client_context() -> ssl.SSLContext:
    """A permissive client: any version OpenSSL still speaks, no verification (sslyze judges later)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    with contextlib.suppress(ssl.SSLError):
        context.set_ciphers("ALL:@SECLEVEL=0")
    return context


def _handshake(sock: socket.socket, sni: str, timeout_s: float, after_starttls: bool) -> _Handshake:
    """One handshake through memory BIOs, so that what a non-TLS peer said can be shown."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = _client_context().wrap_bio(incoming, outgoing, server_hostname=sni)
    received = bytearray()
    deadline = time.monotonic() + timeout_s
    where = "after STARTTLS" if after_starttls else "on connect"
    while True:
        try:
            tls.do_handshake()
            sock.sendall(outgoing.read())
            cipher = tls.cipher()
            return _Handshake(PortState.OPEN, f"{tls.version()} handshake completed {where}",
                              f"{tls.version()} {cipher[0] if cipher else ''}".strip())
        except ssl.SSLWantReadError:
            pending = outgoing.read()
            try:
                if pending:
                    sock.sendall(pending)
                sock.settimeout(max(0.05, deadline - time.monotonic()))
                chunk = sock.recv(16384)
            except TimeoutError:
                return _Handshake(PortState.HANDSHAKE_TIMEOUT,
                                  f"no answer to the TLS ClientHello {where} within {timeout_s:g} s")
            except OSError as exc:
                return _Handshake(PortState.HANDSHAKE_FAILED,
                                  f"connection lost during the TLS handshake {where} ({exc.strerror or exc})")
            if not chunk:
                return _closed_during_handshake(bytes(received), where)
            received += chunk
            incoming.write(chunk)
        except ssl.SSLError as exc:
            return _handshake_error(bytes(received), exc, where)


def _closed_during_handshake(received: bytes, where: str) -> _Handshake:
    if received and not _looks_like_tls(received):
        return _not_tls(received, where)
    return _Handshake(PortState.HANDSHAKE_FAILED, f"the server closed the connection during the TLS handshake {where}")


def _handshake_error(received: bytes, exc: ssl.SSLError, where: str) -> _Handshake:
    if received and not _looks_like_tls(received):
        return _not_tls(received, where)
    reason = exc.reason or str(exc)
    return _Handshake(PortState.HANDSHAKE_FAILED, f"TLS handshake {where} failed: {reason}")


def _looks_like_tls(data: bytes) -> bool:
    """A TLS record starts with handshake (22) or alert (21) and major version 3 (SSL 2: high bit)."""
    return (data[0] in (21, 22) and len(data) > 1 and data[1] == 3) or bool(data[0] & 0x80)


def _not_tls(received: bytes, where: str) -> _Handshake:
    shown = received[:SHOWN_BYTES].decode("ascii", "replace").strip().splitlines()[0]
    return _Handshake(PortState.NO_TLS, f"speaks no TLS {where}: it answered {shown!r}")
