"""Offline tests of the SMTP dialogues against scripted servers on 127.0.0.1: a malformed reply is
an error and never a verdict, the harvest needs its control recipient, closed ports are recognised
by type, and a whole relay probe keeps to one connection at a time."""

from __future__ import annotations

import pytest

from mailaudit.budget import Deadline
from mailaudit.errors import PortClosed, ProtocolError
from mailaudit.evaluate.relay import evaluate_relay_variant, observe_relay
from mailaudit.evaluate.smtp import evaluate_harvest
from mailaudit.probes.relay import Channel, SessionSettings, probe_channel, relay_variants
from mailaudit.probes.smtp_budget import ConnectionSlots
from mailaudit.probes.smtp_checks import Endpoint, probe_harvest, probe_port
from mailaudit.verdict import Outcome
from selftests.unit.test_smtp_client_unit import _closed_port, answering, lines, serving

EHLO = b"250-mail.example.test\r\n250 PIPELINING\r\n"


def _settings(slots: ConnectionSlots | None = None) -> SessionSettings:
    return SessionSettings(connect_timeout=2.0, command_timeout=2.0, deadline=Deadline.never(), slots=slots)


def _endpoint(slots: ConnectionSlots | None = None) -> Endpoint:
    return Endpoint("127.0.0.1", "mail.example.test", _settings(slots))


def _relay_server(rcpt_reply: bytes):
    def respond(line: str) -> bytes:
        verb = line.split(" ", 1)[0].upper().split(":")[0]
        return {"EHLO": EHLO, "RCPT": rcpt_reply}.get(verb, b"250 2.0.0 Ok\r\n")
    return answering(respond)


def test_mixed_code_rcpt_replies_are_errors_not_relay_passes():
    """``250-... / 554 ...`` to every RCPT (RFC 5321 §4.2.1 forbids mixed codes) leaves each variant
    as an error, never a pass, and the whole channel keeps to one connection at a time."""
    slots = ConnectionSlots(2, "mail.example.test")
    variants = relay_variants("example.test", "mail.example.test", "127.0.0.1", "example.net")
    with serving(_relay_server(b"250-2.1.5 Ok\r\n554 5.7.1 Relay access denied\r\n")) as port:
        result = probe_channel("127.0.0.1", "mail.example.test", Channel(port, "plain"), variants,
                               _settings(slots), closed_is_error=True)
    assert set(result.results) == {v.id for v in variants}
    for variant in result.results.values():
        with pytest.raises(ProtocolError, match="mixed reply codes 250 and 554") as info:
            evaluate_relay_variant(variant)
        assert info.value.evidence
    with pytest.raises(ProtocolError):
        observe_relay([result])
    assert slots.peak == 1 and slots.open == 0


def test_a_refused_relay_variant_still_passes():
    """The strict parser changes nothing for a well-formed refusal."""
    variants = relay_variants("example.test", "mail.example.test", "127.0.0.1", "example.net")[:2]
    with serving(_relay_server(b"554 5.7.1 Relay access denied\r\n")) as port:
        result = probe_channel("127.0.0.1", "mail.example.test", Channel(port, "plain"), variants,
                               _settings(), closed_is_error=True)
    assert all(evaluate_relay_variant(r).passed for r in result.results.values())


def test_closed_ports_are_recognised_by_type():
    """A refused connection makes an optional port unavailable and an obligatory one a PortClosed error."""
    port = _closed_port()
    assert probe_port(_endpoint(), port, False, closed_is_error=False).unavailable
    with pytest.raises(PortClosed):
        probe_port(_endpoint(), port, False, closed_is_error=True)
    variants = relay_variants("example.test", "x", "127.0.0.1", "example.net")
    closed = probe_channel("127.0.0.1", "x", Channel(port, "plain"), variants, _settings(), closed_is_error=False)
    assert closed.unavailable and "closed" in closed.unavailable


def _harvest_server(rcpt: bytes | None, control: bytes | None = b"250 2.1.5 Ok\r\n", cut_after: int = 0):
    """Answers the control recipient (postmaster@) with ``control`` and every other RCPT with
    ``rcpt`` (after ``cut_after`` of them, if set: 421); None closes the connection instead."""
    def script(sock):
        sock.sendall(b"220 mail.example.test ESMTP\r\n")
        unknown = 0
        for line in lines(sock):
            verb = line.split(" ", 1)[0].upper().split(":")[0]
            if verb == "RCPT":
                unknown += "postmaster@" not in line
                reply = control if "postmaster@" in line else rcpt
                if cut_after and unknown > cut_after:
                    sock.sendall(b"421 4.7.0 Error: too many errors\r\n")
                    return
                if reply is None:
                    return
                sock.sendall(reply)
            elif verb == "QUIT":
                sock.sendall(b"221 bye\r\n")
                return
            else:
                sock.sendall(EHLO if verb == "EHLO" else b"250 2.0.0 Ok\r\n")
    return script


def _harvest(rcpt: bytes | None, control: bytes = b"250 2.1.5 Ok\r\n", cut_after: int = 0):
    with serving(_harvest_server(rcpt, control, cut_after)) as port:
        return probe_harvest(_endpoint(), port, "example.test", "postmaster@example.test", 3)


def test_harvest_against_a_server_dropping_every_rcpt_cannot_pass():
    """The connection ends at the control recipient: inconclusive, never a pass."""
    with serving(_harvest_server(None, control=None)) as port:
        result = probe_harvest(_endpoint(), port, "example.test", "postmaster@example.test", 3)
    assert result.control_cut and not result.replies
    assert evaluate_harvest(result).outcome is Outcome.INCONCLUSIVE


def test_harvest_tries_unknown_recipients_after_the_control():
    """Control accepted, then unknown recipients: refused and cut off within the limit passes;
    refused limit + 1 times without a cut-off fails."""
    result = _harvest(b"550 5.1.1 User unknown\r\n", cut_after=2)
    assert result.control is not None and result.control.code == 250
    assert [r.code for r in result.replies] == [550, 550, 421] and result.cut
    assert evaluate_harvest(result).passed
    endless = _harvest(b"550 5.1.1 User unknown\r\n")
    assert len(endless.replies) == 4 and endless.cut is None
    assert evaluate_harvest(endless).outcome is Outcome.FAILED


def test_harvest_greylisting_everywhere_is_inconclusive():
    """4xx to every unknown recipient decides nothing."""
    assert evaluate_harvest(_harvest(b"450 4.7.1 Greylisted\r\n")).outcome is Outcome.INCONCLUSIVE


def test_a_malformed_reply_during_the_harvest_is_no_cut_off():
    """A 999 to RCPT is a protocol error (the requirement becomes an error), not the server cutting
    the session short (which could pass)."""
    with pytest.raises(ProtocolError, match="not an SMTP reply line"):
        _harvest(b"999 go away\r\n")
