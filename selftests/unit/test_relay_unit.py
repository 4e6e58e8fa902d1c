"""Offline tests of relay variant generation and of the judging of replies."""

import pytest

from mailaudit.errors import ProtocolError
from mailaudit.evaluate.relay import evaluate_relay_variant, observe_relay
from mailaudit.probes.relay import VARIANT_IDS, Channel, ChannelResult, VariantResult, channels_for, relay_variants
from mailaudit.probes.smtp import Reply
from mailaudit.verdict import Outcome

VARIANTS = {v.id: v for v in relay_variants("example.com", "mail.example.com", "192.0.2.7", "example.net")}


def test_at_least_the_sixteen_classic_forms_are_generated():
    """Null sender, spoofed senders, percent hack, quoting, double @, source route and bang path are all there."""
    assert len(VARIANTS) >= 16
    assert set(VARIANTS) == set(VARIANT_IDS)
    assert VARIANTS["null-sender"].mail_from == "<>"
    assert VARIANTS["percent-hack"].rcpt_to == "<relaytest%example.net@example.com>"
    assert VARIANTS["bang-path"].rcpt_to == "<example.net!relaytest>"
    assert VARIANTS["source-route"].rcpt_to == "<@example.com:relaytest@example.net>"
    assert VARIANTS["ip-literal-sender"].mail_from == "<postmaster@[192.0.2.7]>"
    assert VARIANTS["double-at"].rcpt_to == "<relaytest@example.net@example.com>"
    assert VARIANTS["quoted-local-part"].rcpt_to == '<"relaytest@example.net">'


def test_every_recipient_is_external():
    """Every variant aims at the undeliverable external domain, never at a local mailbox only."""
    for variant in VARIANTS.values():
        assert "example.net" in variant.rcpt_to, variant.id


def test_ipv6_literals_use_the_ipv6_tag():
    """RFC 5321 §4.1.3: IPv6 address literals carry the IPv6: tag."""
    variants = {v.id: v for v in relay_variants("example.com", "mx.example.com", "2001:db8::1", "example.net")}
    assert variants["ip-literal-sender"].mail_from == "<postmaster@[IPv6:2001:db8::1]>"


def test_channels_cover_plain_starttls_and_implicit_tls():
    """STARTTLS ports are probed in plaintext and after STARTTLS; implicit-TLS ports once."""
    channels = channels_for((25, 587, 465), (465,))
    assert [c.id for c in channels] == ["25-plain", "25-starttls", "587-plain", "587-starttls", "465-tls"]


def _result(mail: Reply | None, rcpt: Reply | None, error: str | None = None) -> VariantResult:
    return VariantResult(VARIANTS["percent-hack"], mail, rcpt, "S: 220 x\nC: MAIL FROM:<>", error)


@pytest.mark.parametrize(("mail", "rcpt", "expected"), [
    (Reply(250, ("ok",)), Reply(250, ("2.1.5 Ok",)), Outcome.FAILED),
    (Reply(250, ("ok",)), Reply(251, ("will forward",)), Outcome.FAILED),
    (Reply(250, ("ok",)), Reply(554, ("5.7.1 Relay access denied",)), Outcome.PASSED),
    (Reply(550, ("5.7.1 no",)), None, Outcome.PASSED),
    (Reply(250, ("ok",)), Reply(450, ("4.7.1 greylisted",)), Outcome.INCONCLUSIVE),
    (Reply(421, ("4.7.0 try later",)), None, Outcome.INCONCLUSIVE),
])
def test_reply_classification(mail, rcpt, expected):
    """5xx at MAIL or RCPT passes, 2xx RCPT fails, 4xx is inconclusive — never a pass."""
    assert evaluate_relay_variant(_result(mail, rcpt)).outcome is expected


def test_a_broken_dialogue_is_an_error_not_a_verdict():
    """Connection trouble raises a ProbeError (the test becomes an error)."""
    with pytest.raises(ProtocolError):
        evaluate_relay_variant(_result(None, None, error="server closed the connection"))


def test_failure_message_names_variant_and_reply():
    """The failure message says which form relayed and what the server answered."""
    evaluation = evaluate_relay_variant(_result(Reply(250, ("ok",)), Reply(250, ("2.1.5 Ok",))))
    assert "percent-hack" in evaluation.message and "250 2.1.5 Ok" in evaluation.message
    assert evaluation.evidence.startswith("S: 220")


def test_observation_lists_relayed_channel_variants():
    """The cross-check summary names every channel/variant that relayed."""
    channel = ChannelResult(Channel(25, "plain"), {"percent-hack": _result(Reply(250, ("ok",)), Reply(250, ("ok",)))})
    observation = observe_relay([channel])
    assert observation.relayed_variants == ("25-plain/percent-hack",)
