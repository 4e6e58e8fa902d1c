"""Offline tests of the SMTP client: the strict reply parser (RFC 5321 §4.2), the lines it refuses to
write, closed ports by type, the per-server deadline and connection slots, and credentials a server
echoes. Replies come from a socketpair or from tiny scripted servers on 127.0.0.1."""

from __future__ import annotations

import base64
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from mailaudit.budget import Deadline
from mailaudit.errors import BudgetExceeded, PortClosed, ProtocolError, ProtocolTimeout
from mailaudit.probes.smtp import MAX_REPLY_LINES, PeerClosed, Reply, SmtpSession, check_command_line
from mailaudit.probes.smtp_budget import ConnectionSlots, ServerBudget

# -- a session reading from a socketpair -----------------------------------------------------------


@contextmanager
def paired(server_bytes: bytes = b"", command_timeout: float = 2.0,
           deadline: Deadline | None = None) -> Iterator[tuple[SmtpSession, socket.socket]]:
    """A session whose socket is one end of a socketpair; the other end has sent ``server_bytes``."""
    ours, theirs = socket.socketpair()
    session = SmtpSession("192.0.2.1", 25, "mail.example.test", 2.0, command_timeout, deadline=deadline)
    session._sock = ours
    theirs.sendall(server_bytes)
    try:
        yield session, theirs
    finally:
        session._drop()
        theirs.close()


def _read(server_bytes: bytes) -> Reply:
    with paired(server_bytes) as (session, _):
        return session.read_reply(what="greeting")


@pytest.mark.parametrize(("raw", "expected"), [
    (b"220 mail.example.test ESMTP\r\n", Reply(220, ("mail.example.test ESMTP",))),
    (b"250\r\n", Reply(250, ("",))),
    (b"250-mail.example.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n",
     Reply(250, ("mail.example.test", "PIPELINING", "STARTTLS"))),
    (b"250-first\n250 bare LF ends a line too\n", Reply(250, ("first", "bare LF ends a line too"))),
    (b"554 5.7.1 \x1b[31mred\r\n", Reply(554, ("5.7.1 \\x1b[31mred",))),
])
def test_valid_replies_are_read(raw, expected):
    """Well-formed single and multi-line replies are read whole; control characters are shown escaped."""
    assert _read(raw) == expected


@pytest.mark.parametrize(("raw", "says"), [
    (b"999 yes, that user exists\r\n", "not an SMTP reply line"),
    (b"199 informational\r\n", "not an SMTP reply line"),
    (b"260 second digit out of range\r\n", "not an SMTP reply line"),
    (b"25 two digits\r\n", "not an SMTP reply line"),
    (b"2500 four digits\r\n", "not an SMTP reply line"),
    (b"250x no separator\r\n", "not an SMTP reply line"),
    (b"250\ttab separator\r\n", "not an SMTP reply line"),
    (b"hello\r\n", "not an SMTP reply line"),
    (b"250-2.1.5 Ok\r\n554 5.7.1 Relay access denied\r\n", "mixed reply codes 250 and 554"),
])
def test_malformed_replies_end_the_session(raw, says):
    """A code outside 2xx-5xx, a code not followed by space, hyphen or line end, and mixed codes in
    one reply are ProtocolErrors that drop the connection, with the transcript as evidence."""
    with paired(raw) as (session, _):
        with pytest.raises(ProtocolError) as info:
            session.read_reply(what="reply to VRFY")
        assert not session.connected
    assert says in str(info.value) and "RFC 5321" in str(info.value)
    assert info.value.evidence.startswith("S: ")


def test_an_oversized_reply_is_never_read_as_the_next_reply():
    """A 10,000-line greeting is an error after MAX_REPLY_LINES lines, and the session is over: its
    remaining lines cannot become the answers to EHLO or VRFY."""
    flood = b"".join(b"220-line %d\r\n" % n for n in range(10_000)) + b"220 done\r\n"
    ours, theirs = socket.socketpair()
    writer = threading.Thread(target=lambda: _send_quietly(theirs, flood), daemon=True)
    writer.start()
    session = SmtpSession("192.0.2.1", 25, "x", 2.0, 2.0)
    session._sock = ours
    with pytest.raises(ProtocolError, match=f"longer than {MAX_REPLY_LINES} lines"):
        session.read_reply(what="greeting")
    assert not session.connected
    with pytest.raises(PeerClosed):
        session.command("EHLO mailaudit.invalid")
    theirs.close()
    assert len(session.transcript.lines) <= MAX_REPLY_LINES + 2


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    with suppress(OSError):
        sock.sendall(data)


def test_a_reply_over_the_byte_bound_is_an_error():
    """Lines under the line bound but too many bytes in all (70 lines of 1,000 bytes) end the session."""
    raw = b"".join(b"250-" + b"x" * 1000 + b"\r\n" for _ in range(70)) + b"250 end\r\n"
    ours, theirs = socket.socketpair()
    threading.Thread(target=lambda: _send_quietly(theirs, raw), daemon=True).start()
    session = SmtpSession("192.0.2.1", 25, "x", 2.0, 2.0)
    session._sock = ours
    with pytest.raises(ProtocolError, match="KiB"):
        session.read_reply()
    theirs.close()


def test_a_line_without_line_end_is_an_error_within_the_byte_bound():
    """Bytes without CRLF (here 5,000 and still coming) end the session instead of being buffered."""
    with paired(b"220 " + b"A" * 5000) as (session, _), \
            pytest.raises(ProtocolError, match="no line end within 4096 bytes"):
        session.read_reply(what="greeting")


def test_silence_is_a_timeout_and_a_close_is_peer_closed():
    """No reply within the command timeout is ProtocolTimeout; a closed connection is PeerClosed."""
    with paired(b"", command_timeout=0.2) as (session, _), \
            pytest.raises(ProtocolTimeout, match=r"no greeting within 0\.2 s"):
        session.read_reply(what="greeting")
    with paired(b"250-half a reply\r\n") as (session, theirs):
        theirs.shutdown(socket.SHUT_WR)
        with pytest.raises(PeerClosed, match="server closed the connection before reply"):
            session.read_reply()


# -- never DATA, never a smuggled line --------------------------------------------------------------

@pytest.mark.parametrize("line", [
    "MAIL FROM:<a@example.test>\r\nDATA",
    "RCPT TO:<b@example.test>\nDATA",
    "RCPT TO:<b@example.test\r>",
    "VRFY postmaster\0",
    "DATA",
    "data",
    "  BDAT 100 LAST",
    "BURL imap://example.test/x LAST",
])
def test_forbidden_lines_are_refused_before_anything_is_written(line):
    """A line with CR, LF or NUL inside, or starting a message transfer, raises ValueError (a bug of
    the suite) and no byte reaches the server."""
    with pytest.raises(ValueError):
        check_command_line(line)
    with paired() as (session, theirs):
        with pytest.raises(ValueError):
            session.command(line)
        theirs.settimeout(0.1)
        with pytest.raises(TimeoutError):
            theirs.recv(100)
        assert "C:" not in str(session.transcript)


# -- loopback servers ------------------------------------------------------------------------------

Script = Callable[[socket.socket], None]


@contextmanager
def serving(script: Script) -> Iterator[int]:
    """Serve ``script(sock)`` for every connection on 127.0.0.1; yields the port."""
    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.settimeout(10)
            with suppress(OSError):
                script(self.request)

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def lines(sock: socket.socket) -> Iterator[str]:
    """The client's command lines, until it closes."""
    buffer = b""
    while True:
        while b"\n" not in buffer:
            chunk = sock.recv(4096)
            if not chunk:
                return
            buffer += chunk
        line, _, buffer = buffer.partition(b"\n")
        yield line.rstrip(b"\r").decode()


def answering(respond: Callable[[str], bytes], greeting: bytes = b"220 mail.example.test ESMTP\r\n") -> Script:
    """A server that greets, then answers each command with ``respond(line)`` (QUIT: 221 and close)."""
    def script(sock: socket.socket) -> None:
        sock.sendall(greeting)
        for line in lines(sock):
            if line.upper() == "QUIT":
                sock.sendall(b"221 bye\r\n")
                return
            sock.sendall(respond(line))
    return script


def _closed_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


def test_a_refused_connection_is_port_closed_by_type():
    """Nothing listening: PortClosed (a ConnectError), recognised by type, not by its message."""
    session = SmtpSession("127.0.0.1", _closed_port(), "x", 2.0, 2.0)
    with pytest.raises(PortClosed):
        session.connect()


def test_the_deadline_stops_a_tarpit_with_the_partial_transcript():
    """A server answering every command after 0.4 s (under the 2 s command timeout) is stopped by the
    dialogue's deadline: BudgetExceeded naming the policy key, with what was said so far as evidence."""
    def slow(line: str) -> bytes:
        time.sleep(0.4)
        return b"250 ok\r\n"

    with serving(answering(slow)) as port:
        deadline = Deadline.after(1.0, "SMTP dialogues with tarpit.test", "smtp.server_deadline_s")
        session = SmtpSession("127.0.0.1", port, "x", 2.0, 2.0, deadline=deadline)
        started = time.monotonic()
        session.connect()
        with pytest.raises(BudgetExceeded) as info:
            for _ in range(10):
                session.command("NOOP")
        elapsed = time.monotonic() - started
        session.close()
    assert elapsed < 1.5
    assert "smtp.server_deadline_s" in str(info.value) and "deadline of 1 s" in str(info.value)
    assert "S: 220 mail.example.test ESMTP" in info.value.evidence and "C: NOOP" in info.value.evidence


def test_the_server_budget_counts_dialogue_time_only_and_ends_later_dialogues():
    """Time between dialogues does not count; once the dialogues used the budget, the next one
    fails at once with BudgetExceeded instead of connecting."""
    budget = ServerBudget("mail.example.test", 0.3, ConnectionSlots(1, "mail.example.test"))
    with budget.dialogue():
        time.sleep(0.1)
    time.sleep(0.3)  # not inside a dialogue
    with budget.dialogue() as deadline:
        assert 0.1 < deadline.remaining() <= 0.2
        time.sleep(0.25)
    with serving(answering(lambda line: b"250 ok\r\n")) as port, budget.dialogue() as deadline:
        session = SmtpSession("127.0.0.1", port, "x", 2.0, 2.0, deadline=deadline, slots=budget.slots)
        with pytest.raises(BudgetExceeded, match=r"smtp\.server_deadline_s"):
            session.connect()
    assert budget.slots.open == 0


def test_connection_slots_bound_open_connections():
    """With one slot, a second connection waits for it and gives up with a BudgetExceeded naming
    smtp.max_connections_per_server; closing the first frees it."""
    slots = ConnectionSlots(1, "mail.example.test")
    with serving(answering(lambda line: b"250 ok\r\n")) as port:
        first = SmtpSession("127.0.0.1", port, "x", 0.3, 2.0, slots=slots)
        first.connect()
        second = SmtpSession("127.0.0.1", port, "x", 0.3, 2.0, slots=slots)
        with pytest.raises(BudgetExceeded, match=r"smtp\.max_connections_per_server"):
            second.connect()
        first.close()
        second.connect()
        second.close()
    assert slots.peak == 1 and slots.open == 0


def test_an_echoed_auth_argument_never_shows():
    """A server answering ``535 <the AUTH PLAIN argument>`` (whole or cut) shows neither the argument
    nor the password in the reply or the transcript."""
    password = "S3cret-Passw0rd-for-the-test"
    token = base64.b64encode(f"\0alice@example.test\0{password}".encode()).decode()

    def echo(line: str) -> bytes:
        argument = line.split(" ", 2)[2]
        return f"535-5.7.8 {argument}\r\n535-{argument[:20]}\r\n535 {password}\r\n".encode()

    with serving(answering(echo)) as port:
        session = SmtpSession("127.0.0.1", port, "x", 2.0, 2.0)
        session.connect()
        reply = session.auth_plain("alice@example.test", password)
        session.close()
    shown = f"{reply.text}\n{session.transcript}"
    assert reply.code == 535
    for form in (token, token[:20], token[:len(token) // 2], password):
        assert form not in shown
    assert "AUTH PLAIN [redacted]" in shown


@pytest.mark.parametrize(("leaf", "value"), [("server_deadline_s", 0), ("max_connections_per_server", 0),
                                             ("command_timeout_s", 0)])
def test_smtp_bounds_in_the_policy_must_allow_work(tmp_path, leaf, value):
    """A zero deadline, timeout or connection limit is a ConfigError naming the leaf, not a hang."""
    from mailaudit.errors import ConfigError
    from mailaudit.policy import load_policy

    baseline = Path(__file__).resolve().parents[2] / "policies" / "baseline.yaml"
    policy = tmp_path / "p.yaml"
    policy.write_text(f"extends: {baseline}\nsmtp:\n  {leaf}: {{value: {value}, source: self-test}}\n")
    with pytest.raises(ConfigError, match=f"smtp.{leaf}"):
        load_policy(policy)
