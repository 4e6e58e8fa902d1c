"""Hostile SMTP servers for the self-tests: a small scripted server whose answers, by default, would
make every SMTP requirement fail (it relays, confirms users, accepts forged senders, reveals its
version), with one misbehaviour added per case. Whatever the misbehaviour, the suite may then
report failures, errors, skips or inconclusive verdicts, never a pass.

Every byte the client sends is recorded (``Listener.received``), so a test can prove that no
``DATA`` or ``BDAT`` line ever arrived."""

from __future__ import annotations

import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from selftests.hostile.common import Listener, recv_line

HOST = "hostile.test"
GREETING = b"220 hostile.test ESMTP Postfix 3.7.11 (Debian)\r\n"  # reveals product and version
EHLO_PLAIN = b"250-hostile.test\r\n250-PIPELINING\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n"


@dataclass
class Conversation:
    """What one connection has seen so far (for servers whose answers depend on it)."""

    tls: bool = False
    unknown_recipients: int = 0
    lines: list[str] = field(default_factory=list)


# An answer: the bytes to send, or None to close the connection without a word.
Answer = Callable[[str, str, Conversation], bytes | None]
# The answer to a pipelined group (the command lines that arrived together): bytes sent in one write.
BurstAnswer = Callable[[list[str], Conversation], bytes | None]


def weak_answer(verb: str, line: str, conversation: Conversation) -> bytes | None:
    """The default answers: every one of them fails its requirement."""
    replies = {
        "EHLO": EHLO_PLAIN,
        "HELO": b"250 hostile.test\r\n",
        "MAIL": b"250 2.1.0 Ok\r\n",
        "RCPT": b"250 2.1.5 Ok\r\n",
        "RSET": b"250 2.0.0 Ok\r\n",
        "NOOP": b"250 2.0.0 Ok\r\n",
        "VRFY": b"250 2.0.0 <postmaster@hostile.test>\r\n",
        "EXPN": b"250 2.0.0 <postmaster@hostile.test>\r\n",
        "AUTH": b"535 5.7.8 Error: authentication failed\r\n",
    }
    return replies.get(verb, b"502 5.5.2 Error: command not recognized\r\n")


def verb_of(line: str) -> str:
    """``MAIL`` for ``MAIL FROM:<x>``, ``RCPT`` for ``RCPT TO:<y>``."""
    return line.split(" ", 1)[0].split(":", 1)[0].upper()


@dataclass
class HostileSmtp:
    """One hostile server: its greeting, how it answers, how slowly, and whether it offers STARTTLS."""

    answer: Answer = weak_answer
    greeting: bytes | Callable[[socket.socket], None] = GREETING
    delay_s: float = 0.0  # before every reply, the greeting included (a tarpit)
    tls: ssl.SSLContext | None = None  # offer STARTTLS with this server context
    burst: BurstAnswer | None = None  # answers lines that arrived together (pipelined), if set

    def handle(self, sock: socket.socket, listener: Listener) -> None:
        """Serve one connection (tcp_listener's handler)."""
        time.sleep(self.delay_s)
        if callable(self.greeting):
            self.greeting(sock)
            return
        sock.sendall(self.greeting)
        conversation = Conversation()
        while True:
            raw = recv_line(sock, listener)
            if not raw.endswith(b"\n"):
                return
            line = raw.decode("latin-1").rstrip("\r\n")
            conversation.lines.append(line)
            if self.burst is not None and waiting(sock):
                group = [line, *pipelined_rest(sock, listener)]
                conversation.lines.extend(group[1:])
                reply = self.burst(group, conversation)
                if reply is None:
                    return
                sock.sendall(reply)
                continue
            verb = verb_of(line)
            time.sleep(self.delay_s)
            if verb == "QUIT":
                sock.sendall(b"221 2.0.0 Bye\r\n")
                return
            if verb == "STARTTLS" and self.tls is not None and not conversation.tls:
                sock.sendall(b"220 2.0.0 Ready to start TLS\r\n")
                sock = self.tls.wrap_socket(sock, server_side=True)
                conversation.tls = True
                continue
            reply = self.answer(verb, line, conversation)
            if reply is None:
                return
            sock.sendall(reply)


# -- the misbehaviours of issue 13 -----------------------------------------------------------------------

# A 10,000-line greeting without product or version. The old client cut it at 100 lines and read the
# rest as the replies to EHLO and VRFY, so the real answers (the version, the confirmed user) were
# never seen and both requirements passed.
FLOOD_GREETING = b"".join(b"220-hostile.test welcome line %d\r\n" % n for n in range(10_000)) + \
    b"220 hostile.test ESMTP\r\n"


def behind_the_flood(verb: str, line: str, conversation: Conversation) -> bytes | None:
    """The answers hidden behind the flood: an EHLO naming the product version, VRFY confirming."""
    if verb == "EHLO":
        return b"250-hostile.test Postfix 3.7.11\r\n250 PIPELINING\r\n"
    return weak_answer(verb, line, conversation)


def endless_line(sock: socket.socket) -> None:
    """A greeting line that never ends: bytes without CRLF until the client gives up."""
    sock.sendall(b"220 hostile.test ")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        sock.sendall(b"A" * 4096)
        time.sleep(0.01)


def vrfy_999(verb: str, line: str, conversation: Conversation) -> bytes | None:
    """VRFY and EXPN answered with code 999 (outside 2xx-5xx)."""
    if verb in ("VRFY", "EXPN"):
        return b"999 yes, that user exists\r\n"
    return weak_answer(verb, line, conversation)


def mixed_rcpt(verb: str, line: str, conversation: Conversation) -> bytes | None:
    """RCPT answered ``250-...`` then ``554 ...`` in one reply (mixed codes, RFC 5321 §4.2.1)."""
    if verb == "RCPT":
        return b"250-2.1.5 Ok\r\n554 5.7.1 Relay access denied\r\n"
    return weak_answer(verb, line, conversation)


def drop_on_rcpt(verb: str, line: str, conversation: Conversation) -> bytes | None:
    """Every RCPT closes the connection, the control recipient's included."""
    if verb == "RCPT":
        return None
    return weak_answer(verb, line, conversation)


def refused_with_250(verb: str, line: str, conversation: Conversation) -> bytes | None:
    """Unknown recipients answered ``250 ... refused``, then 421 after three of them in a session."""
    if verb == "RCPT" and "postmaster@" not in line.lower():
        conversation.unknown_recipients += 1
        if conversation.unknown_recipients > 3:
            return b"421 4.7.0 hostile.test Error: too many errors\r\n"
        return b"250 2.1.5 refused: no such user here\r\n"
    return weak_answer(verb, line, conversation)


def greylisting(verb: str, line: str, conversation: Conversation) -> bytes | None:
    """Postmaster accepted; every other recipient greylisted (450), for ever."""
    if verb == "RCPT" and "postmaster@" not in line.lower():
        return b"450 4.7.1 Greylisted, try again later\r\n"
    return weak_answer(verb, line, conversation)


EHLO_STARTTLS = b"250-hostile.test\r\n250-STARTTLS\r\n250 PIPELINING\r\n"
EHLO_AUTH = b"250-hostile.test\r\n250-AUTH PLAIN\r\n250 PIPELINING\r\n"


def auth_echo(verb: str, line: str, conversation: Conversation) -> bytes | None:
    """STARTTLS, then AUTH PLAIN offered; every AUTH answered ``535`` followed by the argument it got."""
    if verb == "EHLO":
        return EHLO_AUTH if conversation.tls else EHLO_STARTTLS
    if verb == "AUTH":
        argument = line.split(" ", 2)[2] if line.count(" ") >= 2 else ""
        return f"535 5.7.8 {argument}\r\n".encode("latin-1")
    return weak_answer(verb, line, conversation)


# -- the misbehaviours of issue 14: pipelined groups (RFC 2920) answered wrongly --------------------------

def waiting(sock: socket.socket) -> bool:
    """More bytes from the client are already here (it wrote several commands at once)."""
    return bool(select.select([sock], [], [], 0)[0])


def pipelined_rest(sock: socket.socket, listener: Listener) -> list[str]:
    """The other command lines of a group that arrived together (read while more are waiting)."""
    rest: list[str] = []
    while waiting(sock):
        raw = recv_line(sock, listener)
        if not raw.endswith(b"\n"):
            break
        rest.append(raw.decode("latin-1").rstrip("\r\n"))
    return rest


def answer_first_only(group: list[str], conversation: Conversation) -> bytes | None:
    """Answers the first command of a pipelined group and drops the rest, as servers that flush their
    input after a command do (RFC 2920 §1): fewer replies than commands."""
    return weak_answer(verb_of(group[0]), group[0], conversation)


def stray_refusal(group: list[str], conversation: Conversation) -> bytes | None:
    """Relays and accepts everything, but in a pipelined group sends a stray ``554 ... denied`` before
    each RCPT's own ``250``: a client reading the replies out of step would see every RCPT refused."""
    replies = []
    for line in group:
        verb = verb_of(line)
        stray = b"554 5.7.1 Relay access denied\r\n" if verb == "RCPT" else b""
        replies.append(stray + (weak_answer(verb, line, conversation) or b""))
    return b"".join(replies)


def received_commands(listener: Listener) -> list[str]:
    """Every line the server received, over all connections."""
    return [raw.decode("latin-1").rstrip("\r\n") for raw in listener.received]


def message_transfers(listener: Listener) -> list[str]:
    """The received lines that would start a message transfer (DATA, BDAT, BURL): must be none."""
    return [line for line in received_commands(listener) if verb_of(line.strip()) in ("DATA", "BDAT", "BURL")]


@contextmanager
def refusing_resolver(ip: str) -> Iterator[str]:
    """A UDP DNS server on ``ip`` that answers every query REFUSED at once (so the PTR lookup of
    SMTP-BANNER-HOSTNAME ends in a moment, without the lab); yields ``ip:port`` for --dns-server."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((ip, 0))
    sock.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                query, client = sock.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            if len(query) >= 12:  # header: id, flags (QR=1, opcode kept, RCODE=5 REFUSED), counts
                flags = bytes([0x80 | (query[2] & 0x78), 0x05])
                sock.sendto(query[:2] + flags + query[4:6] + b"\0\0\0\0\0\0" + query[12:], client)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"{ip}:{sock.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=1)
        sock.close()
