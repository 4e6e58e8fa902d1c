"""Offline tests of the SMTP judgements: 5xx refuses, 2xx accepts, 4xx cannot decide — never a pass."""

import pytest

from mailaudit.evaluate.smtp import (
    evaluate_auth_match,
    evaluate_auth_tls_only,
    evaluate_bruteforce,
    evaluate_catchall,
    evaluate_harvest,
    evaluate_local_spoof,
    evaluate_submission,
    evaluate_vrfy_expn,
    observe_catchall,
)
from mailaudit.probes.smtp import Reply
from mailaudit.probes.smtp_checks import (
    AuthAttempt,
    AuthMatchResult,
    Envelope,
    EnvelopeCheck,
    PortSnapshot,
    Query,
    RepeatResult,
    VrfyResult,
    auth_mechanisms,
    random_local_part,
)
from mailaudit.verdict import Outcome

OK = Reply(250, ("2.1.0 Ok",))
REFUSED = Reply(550, ("5.1.1 <x@example.com>: Recipient address rejected: User unknown",))
GREYLISTED = Reply(450, ("4.7.1 try again later",))
NO_EXPN = Reply(502, ("5.5.2 Error: command not recognized",))


def _envelope(mail: Reply, rcpt: Reply | None, label: str = "probe") -> Envelope:
    return Envelope(label, "<a@example.com>", "<b@example.com>", mail, rcpt)


def _check(*envelopes: Envelope) -> EnvelopeCheck:
    return EnvelopeCheck("25-plain", envelopes, "S: 220 mail.example.com ESMTP")


def test_random_local_parts_are_unguessable_and_recognisable():
    """Each run draws a new 64-bit random local part, prefixed so a postmaster recognises it."""
    first, second = random_local_part("catchall"), random_local_part("catchall")
    assert first != second and first.startswith("mailaudit-catchall-") and len(first) >= 35


@pytest.mark.parametrize(("mail", "rcpt", "expected"), [
    (OK, OK, Outcome.FAILED),
    (OK, REFUSED, Outcome.PASSED),
    (OK, GREYLISTED, Outcome.INCONCLUSIVE),
    (Reply(554, ("no",)), None, Outcome.INCONCLUSIVE),
])
def test_catchall(mail, rcpt, expected):
    """Only a 5xx to the random recipient passes; a refused MAIL cannot decide."""
    assert evaluate_catchall(_check(_envelope(mail, rcpt))).outcome is expected


def test_catchall_observation_for_crosschecks():
    """The cross-check reads .accepted (and whether the answer decided it)."""
    assert observe_catchall(_check(_envelope(OK, OK))).accepted is True
    refused = observe_catchall(_check(_envelope(OK, REFUSED)))
    assert refused.accepted is False and refused.decided
    assert not observe_catchall(_check(_envelope(OK, GREYLISTED))).decided


def _vrfy(known: Reply, unknown: Reply, expn: Reply = NO_EXPN) -> VrfyResult:
    queries = (Query("VRFY", "postmaster@example.com", True, known), Query("VRFY", "zz@example.com", False, unknown),
               Query("EXPN", "postmaster@example.com", True, expn), Query("EXPN", "zz@example.com", False, expn))
    return VrfyResult("25-plain", queries, "")


@pytest.mark.parametrize(("known", "unknown", "expected"), [
    (Reply(502, ("5.5.1 VRFY command is disabled",)), Reply(502, ("5.5.1 disabled",)), Outcome.PASSED),
    (Reply(250, ("2.0.0 Ok",)), Reply(252, ("2.0.0 zz",)), Outcome.FAILED),
    (Reply(251, ("User not local; will forward",)), Reply(550, ("no",)), Outcome.FAILED),
    (Reply(252, ("2.0.0 postmaster",)), Reply(252, ("2.0.0 zz",)), Outcome.PASSED),
    (Reply(252, ("2.0.0 postmaster",)), Reply(550, ("5.1.1 unknown",)), Outcome.FAILED),
    (Reply(550, ("5.1.1 no",)), Reply(550, ("5.1.1 no",)), Outcome.PASSED),
    (Reply(450, ("4.7.1 later",)), Reply(450, ("4.7.1 later",)), Outcome.INCONCLUSIVE),
])
def test_vrfy(known, unknown, expected):
    """250/251 confirm; 252 for a user next to 550 for a nonexistent one confirms by difference."""
    assert evaluate_vrfy_expn(_vrfy(known, unknown)).outcome is expected


def test_expn_that_expands_fails():
    """EXPN answering 250 with the list members confirms users too."""
    refused = Reply(502, ("no",))
    evaluation = evaluate_vrfy_expn(_vrfy(refused, refused, expn=Reply(250, ("alice@example.com",))))
    assert evaluation.outcome is Outcome.FAILED and "EXPN" in evaluation.message


def test_local_spoof_needs_an_accepted_control():
    """If even the null sender cannot reach the recipient, a refusal proves nothing."""
    control_refused = _check(_envelope(OK, REFUSED, "control"), _envelope(OK, REFUSED, "spoof"))
    assert evaluate_local_spoof(control_refused).outcome is Outcome.INCONCLUSIVE
    refused = _check(_envelope(OK, OK, "control"), _envelope(OK, Reply(553, ("5.7.1 not logged in",)), "spoof"))
    assert evaluate_local_spoof(refused).passed
    accepted = _check(_envelope(OK, OK, "control"), _envelope(OK, OK, "spoof"), _envelope(OK, REFUSED, "other"))
    evaluation = evaluate_local_spoof(accepted)
    assert evaluation.outcome is Outcome.FAILED and "spoof" in evaluation.message and "other" not in evaluation.message


def test_submission():
    """Accepted without AUTH fails; refused passes; a closed port is skipped."""
    assert evaluate_submission(_check(_envelope(OK, OK))).outcome is Outcome.FAILED
    assert evaluate_submission(_check(_envelope(OK, Reply(554, ("5.7.1 Access denied",))))).passed
    assert evaluate_submission(_check(_envelope(Reply(530, ("5.7.0 Must issue STARTTLS",)), None))).passed
    closed = EnvelopeCheck("587-starttls", (), "", unavailable="port 587 closed")
    assert evaluate_submission(closed).outcome is Outcome.SKIPPED


def _auth_match(auth: Reply, *envelopes: Envelope) -> AuthMatchResult:
    return AuthMatchResult("587-starttls", "alice@example.com", auth, envelopes, "C: AUTH PLAIN [redacted]")


def test_auth_match():
    """Foreign senders refused after AUTH pass; one accepted fails; a refused own address is undecided."""
    welcome = Reply(235, ("2.7.0 Authentication successful",))
    mismatch = Reply(553, ("5.7.1 Sender address rejected: not owned by user alice@example.com",))
    own = _envelope(OK, OK, "own")
    assert evaluate_auth_match(_auth_match(welcome, own, _envelope(OK, mismatch), _envelope(mismatch, None))).passed
    failed = evaluate_auth_match(_auth_match(welcome, own, _envelope(OK, OK, "other"), _envelope(OK, mismatch)))
    assert failed.outcome is Outcome.FAILED and "other" in failed.message
    refused_own = _auth_match(welcome, _envelope(OK, mismatch, "own"), _envelope(OK, mismatch))
    assert evaluate_auth_match(refused_own).outcome is Outcome.INCONCLUSIVE
    assert evaluate_auth_match(_auth_match(Reply(454, ("4.7.0 later",)))).outcome is Outcome.INCONCLUSIVE


def _snapshot(ehlo: tuple[str, ...]) -> PortSnapshot:
    return PortSnapshot(25, False, Reply(220, ("mail.example.com ESMTP",)), Reply(250, ehlo), None, None, None, "")


@pytest.mark.parametrize(("ehlo", "reply", "expected"), [
    (("mail", "STARTTLS"), Reply(503, ("5.5.1 Error: authentication not enabled",)), Outcome.PASSED),
    (("mail", "STARTTLS"), Reply(538, ("5.7.11 Encryption required",)), Outcome.PASSED),
    (("mail", "STARTTLS", "AUTH PLAIN LOGIN"), Reply(503, ("no",)), Outcome.FAILED),
    (("mail", "STARTTLS"), Reply(535, ("5.7.8 authentication failed",)), Outcome.FAILED),
    (("mail", "STARTTLS"), Reply(334, ("",)), Outcome.FAILED),
    (("mail", "STARTTLS"), Reply(454, ("4.7.0 Temporary authentication failure",)), Outcome.INCONCLUSIVE),
])
def test_auth_tls_only(ehlo, reply, expected):
    """Offered before STARTTLS fails; 334/235/535 to a bogus plaintext AUTH fails; 503/530/538 pass."""
    assert evaluate_auth_tls_only(_snapshot(ehlo), AuthAttempt(25, reply, "")).outcome is expected


def test_auth_mechanisms_both_spellings():
    """``AUTH PLAIN LOGIN`` and the old ``AUTH=PLAIN`` are both read."""
    assert auth_mechanisms(Reply(250, ("mail", "AUTH PLAIN LOGIN", "AUTH=CRAM-MD5"))) == {"PLAIN", "LOGIN", "CRAM-MD5"}
    assert auth_mechanisms(Reply(250, ("mail", "AUTHX FOO"))) == frozenset()


def _repeat(replies: tuple[Reply, ...], cut: str | None, limit: int = 3) -> RepeatResult:
    return RepeatResult("25-plain", "alice@example.com", limit, replies, cut, "", OK)


def test_harvest():
    """Cut off (421 or disconnect) within the limit passes; every recipient answered fails."""
    cut = (REFUSED, REFUSED, REFUSED, Reply(421, ("4.7.0 Error: too many errors",)))
    assert evaluate_harvest(_repeat(cut, "attempt 4 answered 421")).passed
    assert evaluate_harvest(_repeat((REFUSED, REFUSED), "connection ended at attempt 3")).passed
    evaluation = evaluate_harvest(_repeat((OK,) * 4, None))
    assert evaluation.outcome is Outcome.FAILED and "4 unknown recipients" in evaluation.message


def test_bruteforce():
    """Blocked within the limit passes; every wrong password answered 535 fails; 235 fails loudly."""
    failed = Reply(535, ("5.7.8 Error: authentication failed",))
    assert evaluate_bruteforce(_repeat((failed, failed, Reply(450, ("4.7.1 too many AUTH",))), "blocked")).passed
    evaluation = evaluate_bruteforce(_repeat((failed,) * 4, None))
    assert evaluation.outcome is Outcome.FAILED and "535" in evaluation.message
    backend = Reply(454, ("4.7.0 Temporary authentication failure",))
    assert evaluate_bruteforce(_repeat((failed, backend, failed, backend), None)).outcome is Outcome.INCONCLUSIVE
    accepted = evaluate_bruteforce(_repeat((failed, Reply(235, ("2.7.0 ok",))), "stopped"))
    assert accepted.outcome is Outcome.FAILED and "accepted" in accepted.message
