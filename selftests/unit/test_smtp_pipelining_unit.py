"""Offline tests of SMTP pipelining (RFC 2920): a group is written at once and its replies read strictly
in order, a server that answers a group wrongly (fewer replies, stray replies, replies out of bounds)
never gets a verdict out of it, the relay channel keeps below the server's error limit, and a server
without PIPELINING is still asked one command at a time. Scripted servers on 127.0.0.1."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from mailaudit.errors import ProtocolError, ProtocolTimeout
from mailaudit.evaluate.relay import evaluate_relay_variant
from mailaudit.probes.relay import Channel, SessionSettings, probe_channel, relay_variants
from mailaudit.probes.smtp import PIPELINE_MAX_BYTES, SmtpSession
from mailaudit.probes.smtp_budget import ConnectionSlots
from mailaudit.probes.smtp_checks import try_envelopes
from mailaudit.verdict import Outcome
from selftests.unit.test_smtp_client_unit import serving

GREETING = b"220 mail.example.test ESMTP\r\n"
EHLO_PIPELINING = b"250-mail.example.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
EHLO_PLAIN = b"250-mail.example.test\r\n250 8BITMIME\r\n"
ENVELOPES = (("first", "<>", "<a@example.test>"), ("second", "<b@example.test>", "<c@example.net>"))
Burst = Callable[[list[str]], bytes | None]


def verb(line: str) -> str:
    """``MAIL`` for ``MAIL FROM:<x>``."""
    return line.split(" ", 1)[0].split(":", 1)[0].upper()


def single(line: str) -> bytes:
    """A plain server's answer to one command: MAIL and RSET accepted, RCPT refused."""
    return {"MAIL": b"250 2.1.0 Ok\r\n", "RCPT": b"554 5.7.1 Relay access denied\r\n",
            "RSET": b"250 2.0.0 Ok\r\n"}.get(verb(line), b"502 5.5.2 not implemented\r\n")


def bursting(burst: Burst, ehlo: bytes = EHLO_PIPELINING, received: list[str] | None = None):
    """A server that answers EHLO and QUIT alone and every other batch of lines that arrived together
    (a pipelined group, written in one send) with ``burst(lines)`` in one write (None: hang up)."""
    def script(sock: socket.socket) -> None:
        sock.sendall(GREETING)
        buffer = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return
            buffer += chunk
            *complete, buffer = buffer.split(b"\r\n")
            lines = [line.decode() for line in complete]
            if received is not None:
                received.extend(lines)
            if not lines:
                continue
            if verb(lines[0]) == "EHLO":
                sock.sendall(ehlo)
            elif verb(lines[0]) == "QUIT":
                sock.sendall(b"221 2.0.0 Bye\r\n")
                return
            else:
                reply = burst(lines)
                if reply is None:
                    return
                sock.sendall(reply)
    return script


@contextlib.contextmanager
def session_on(script) -> Iterator[SmtpSession]:
    """A greeted session (EHLO said) on a scripted server; closed afterwards."""
    with serving(script) as port:
        session = SmtpSession("127.0.0.1", port, "mail.example.test", 2.0, 0.5)
        session.connect()
        session.ehlo()
        try:
            yield session
        finally:
            session.close()


# -- the pipelined reader ---------------------------------------------------------------------------------

def test_a_group_is_written_at_once_and_its_replies_read_in_order():
    """The server sees all six commands of two envelopes before it answers anything (it would wait for
    ever otherwise), and each reply is taken for its own command: RCPT of the second envelope refused."""
    def whole_group(lines: list[str]) -> bytes:
        assert len(lines) == 6, lines  # the group arrived in one piece
        return b"".join(single(line) if "c@example.net" in line or verb(line) != "RCPT" else b"250 2.1.5 Ok\r\n"
                        for line in lines)

    with session_on(bursting(whole_group)) as session:
        assert session.pipelining
        first, second = try_envelopes(session, ENVELOPES)
    assert first.accepted and second.rcpt is not None and second.rcpt.code == 554
    text = str(session.transcript)
    assert "pipelined (RFC 2920): 6 commands in one write (MAIL RCPT RSET MAIL RCPT RSET)" in text
    assert "C: RCPT TO:<c@example.net>\nS: 554 5.7.1 Relay access denied" in text


def test_fewer_replies_than_commands_are_a_timeout_not_a_verdict():
    """A server that answers only the first command of a group (it flushes its input, RFC 2920 §1)
    leaves the RCPT unanswered: ProtocolTimeout, the connection dropped, no envelope judged."""
    with session_on(bursting(lambda lines: single(lines[0]))) as session, \
            pytest.raises(ProtocolTimeout, match=r"no reply to RCPT \(2 of 6 pipelined\) within 0\.5 s"):
        try_envelopes(session, ENVELOPES)
    assert not session.connected


def test_a_stray_reply_in_a_group_is_out_of_step():
    """A stray ``554`` sent before RCPT's own ``250`` would read as a refusal (a catch-all or relay
    pass); the reply left over after the last command shows the replies are out of step."""
    def stray(lines: list[str]) -> bytes:
        return b"".join((b"554 5.7.1 Relay access denied\r\n250 2.1.5 Ok\r\n" if verb(line) == "RCPT"
                         else single(line)) for line in lines)

    with session_on(bursting(stray)) as session, pytest.raises(ProtocolError, match="out of step") as info:
        try_envelopes(session, ENVELOPES[:1])
    assert "bytes more than one reply per command" in str(info.value) and info.value.evidence


@pytest.mark.parametrize("reply", [b"354 go ahead\r\n", b"999 no such code\r\n",
                                   b"250-a\r\n554 mixed codes\r\n"])
def test_a_reply_out_of_bounds_in_a_group_is_a_protocol_error(reply):
    """A 3xx to RCPT (RFC 5321 §4.3.2 has none), a code outside 2xx-5xx and mixed codes in the middle
    of a group are ProtocolErrors: the session ends, nothing is judged."""
    with session_on(bursting(lambda lines: b"".join(reply if verb(line) == "RCPT" else single(line)
                                                    for line in lines))) as session, \
            pytest.raises(ProtocolError):
        try_envelopes(session, ENVELOPES)
    assert not session.connected


@pytest.mark.parametrize("lines", [
    ["MAIL FROM:<>", "DATA"],
    ["MAIL FROM:<>", "VRFY postmaster"],
    ["EHLO mailaudit.invalid", "MAIL FROM:<>"],
    ["MAIL FROM:<>", "NOOP"],
    ["MAIL FROM:<>\r\nDATA"],
    [],
    ["RCPT TO:<x@example.test>"] * (PIPELINE_MAX_BYTES // 20),
])
def test_only_envelope_commands_within_the_window_are_pipelined(lines):
    """DATA, VRFY, EHLO and NOOP (RFC 2920 §3.1: last in a group only), a line with CR/LF, an empty
    group and a group larger than the 4 KiB window are refused before a byte is written."""
    received: list[str] = []
    with session_on(bursting(lambda got: b"".join(single(line) for line in got), received=received)) as session:
        before = list(received)
        with pytest.raises(ValueError):
            session.pipeline(lines)
        session.command("RSET")
    assert received == [*before, "RSET", "QUIT"]


def test_no_pipelining_without_the_extension():
    """A server that does not advertise PIPELINING is never sent a group; envelopes go one command at
    a time, and RCPT is not sent after a refused MAIL."""
    received: list[str] = []

    def one_at_a_time(lines: list[str]) -> bytes:
        assert len(lines) == 1, lines
        return b"530 5.7.0 Must issue a STARTTLS command first\r\n" if verb(lines[0]) == "MAIL" else single(lines[0])

    with session_on(bursting(one_at_a_time, ehlo=EHLO_PLAIN, received=received)) as session:
        assert not session.pipelining
        with pytest.raises(ValueError, match="advertises PIPELINING"):
            session.pipeline(["RSET"])
        tried = try_envelopes(session, ENVELOPES)
    assert all(e.rcpt is None and e.mail.code == 530 for e in tried)
    assert not [line for line in received if verb(line) == "RCPT"]
    assert "pipelined" not in str(session.transcript)


def test_rcpt_pipelined_after_a_refused_mail_decides_nothing():
    """With PIPELINING, RCPT follows MAIL before MAIL's answer is known; after a refused MAIL its
    reply is not judged (the envelope is decided by MAIL, as without pipelining), and the transcript
    says so."""
    def tls_first(lines: list[str]) -> bytes:
        return b"".join(b"250 2.0.0 Ok\r\n" if verb(line) == "RSET" else
                        b"530 5.7.0 Must issue a STARTTLS command first\r\n" for line in lines)

    with session_on(bursting(tls_first)) as session:
        [envelope] = try_envelopes(session, ENVELOPES[:1])
    assert envelope.rcpt is None and envelope.refused and envelope.mail.code == 530
    assert "RCPT was pipelined after a refused MAIL: its reply decides nothing" in str(session.transcript)


def test_stopping_before_the_last_reply_drops_the_connection():
    """Replies of a group left unread can never answer a later command: the connection is dropped."""
    with session_on(bursting(lambda lines: b"".join(single(line) for line in lines))) as session:
        replies = session.pipeline(["MAIL FROM:<>", "RCPT TO:<a@example.net>", "RSET"])
        assert next(replies).code == 250
        with pytest.raises(ValueError, match="unread"):
            session.command("NOOP")
        replies.close()
        assert not session.connected
    assert "2 pipelined commands left unanswered, the reading stopped: connection dropped" in str(session.transcript)


# -- the relay channel over pipelining ----------------------------------------------------------------------

VARIANTS = relay_variants("example.test", "mail.example.test", "127.0.0.1", "example.net")


def _settings(slots: ConnectionSlots | None = None) -> SessionSettings:
    return SessionSettings(connect_timeout=2.0, command_timeout=2.0, slots=slots)


def limited(answer: Callable[[str], bytes], hard_limit: int, sessions: list[list[str]]):
    """A Postfix-like server with PIPELINING: each reply of 400 or more is an error; once a session
    has ``hard_limit`` errors, the next command is answered 421 and the connection closed. Every
    session's commands are recorded in ``sessions``."""
    def script(sock: socket.socket) -> None:
        commands: list[str] = []
        sessions.append(commands)
        errors = 0

        def burst(lines: list[str]) -> bytes | None:
            nonlocal errors
            out = b""
            for line in lines:
                commands.append(line)
                if errors >= hard_limit:
                    sock.sendall(out + b"421 4.7.0 Error: too many errors\r\n")
                    return None
                reply = answer(line)
                errors += int(reply[:3]) >= 400
                out += reply
            return out
        bursting(burst)(sock)
    return script


@pytest.mark.parametrize(("mail_reply", "errors_per_variant"), [
    (b"250 2.1.0 Ok\r\n", 1), (b"530 5.7.0 Must issue a STARTTLS command first\r\n", 2)])
def test_the_relay_channel_stays_under_the_error_limit(mail_reply, errors_per_variant):
    """Against a server that says 421 after 4 errors (the hardened lab's submission ports), every
    variant is judged a refusal, none inconclusive: the channel starts a new session at the 421,
    learns the limit and the errors a variant costs (2 when MAIL is refused: the pipelined RCPT is
    refused too), and from then on stays under the limit."""
    sessions: list[list[str]] = []

    def answer(line: str) -> bytes:
        return mail_reply if verb(line) == "MAIL" else single(line)

    with serving(limited(answer, 4, sessions)) as port:
        result = probe_channel("127.0.0.1", "mail.example.test", Channel(port, "plain"), VARIANTS,
                               _settings(), closed_is_error=True)
    outcomes = {vid: evaluate_relay_variant(r).outcome for vid, r in result.results.items()}
    assert set(outcomes) == {v.id for v in VARIANTS} and set(outcomes.values()) == {Outcome.PASSED}
    assert len(sessions) > 1
    assert all(len([c for c in s if verb(c) == "MAIL"]) <= 4 // errors_per_variant for s in sessions[1:])


def test_a_broken_reply_leaves_its_whole_group_untrusted():
    """A ``999`` to one variant's RCPT (every time) makes that variant an error, and the variant read
    before it in the same group too: replies before a broken one may be out of step. Every other
    variant is judged, and no judged variant's evidence holds the broken reply."""
    sessions: list[list[str]] = []

    def answer(line: str) -> bytes:
        return b"999 broken\r\n" if line == f"RCPT TO:{VARIANTS[7].rcpt_to}" else single(line)

    with serving(limited(answer, 100, sessions)) as port:
        result = probe_channel("127.0.0.1", "mail.example.test", Channel(port, "plain"), VARIANTS,
                               _settings(), closed_is_error=True)
    errors = {vid for vid, r in result.results.items() if r.error}
    assert errors == {VARIANTS[6].id, VARIANTS[7].id}, errors
    for vid, variant in result.results.items():
        if vid not in errors:
            assert evaluate_relay_variant(variant).passed and "999" not in variant.transcript
        else:
            with pytest.raises(ProtocolError, match="not an SMTP reply line"):
                evaluate_relay_variant(variant)


def test_a_relay_channel_costs_a_few_round_trips():
    """17 variants refused at RCPT: groups of 6 (the error budget per session), so each session is
    its setup plus one group, never three round trips per variant."""
    sessions: list[list[str]] = []
    with serving(limited(single, 100, sessions)) as port:
        probe_channel("127.0.0.1", "mail.example.test", Channel(port, "plain"), VARIANTS, _settings(),
                      closed_is_error=True)
    assert [len([c for c in s if verb(c) == "MAIL"]) for s in sessions] == [6, 6, 5]


def test_slots_bound_side_by_side_channels_and_a_waiting_dialogue_gets_its_turn():
    """Three relay channels started at once with two slots never hold more than two connections; a
    dialogue that has to wait for a slot longer than the connect timeout still runs (it waits up to
    its deadline, the end of the server's SMTP budget)."""
    from mailaudit.budget import Deadline

    slots = ConnectionSlots(2, "127.0.0.1")
    settings = SessionSettings(connect_timeout=0.2, command_timeout=2.0, slots=slots,
                               deadline=Deadline.after(10, "SMTP dialogues with 127.0.0.1", "smtp.server_deadline_s"))

    def slow(lines: list[str]) -> bytes:
        time.sleep(0.15)
        return b"".join(single(line) for line in lines)

    results = []

    def channel(port: int) -> None:
        results.append(probe_channel("127.0.0.1", "x", Channel(port, "plain"), VARIANTS[:6], settings, True))

    with serving(bursting(slow)) as port:
        threads = [threading.Thread(target=channel, args=(port,)) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
    assert slots.peak == 2 and slots.open == 0
    assert len(results) == 3
    assert all(evaluate_relay_variant(r).passed for result in results for r in result.results.values())
