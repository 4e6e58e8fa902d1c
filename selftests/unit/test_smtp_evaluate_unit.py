"""Offline tests of the SMTP judgements: 5xx refuses, 2xx accepts, 4xx cannot decide — never a pass."""

import pytest

from mailaudit.errors import CannotJudge
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


def test_vrfy_other_success_codes_confirm_and_3xx_cannot_be_judged():
    """Any 2xx but 252 says the user exists; a 3xx is no answer to VRFY, so the evaluator cannot judge."""
    assert evaluate_vrfy_expn(_vrfy(Reply(220, ("yes",)), Reply(550, ("no",)))).outcome is Outcome.FAILED
    with pytest.raises(CannotJudge):
        evaluate_vrfy_expn(_vrfy(Reply(354, ("go on",)), Reply(550, ("no",))))


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
    """Accepted without AUTH fails; refused passes (a closed port never gets here: its snapshot
    makes the fixture skip)."""
    assert evaluate_submission(_check(_envelope(OK, OK))).outcome is Outcome.FAILED
    assert evaluate_submission(_check(_envelope(OK, Reply(554, ("5.7.1 Access denied",))))).passed
    assert evaluate_submission(_check(_envelope(Reply(530, ("5.7.0 Must issue STARTTLS",)), None))).passed


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
    (("mail", "STARTTLS"), Reply(354, ("go on",)), Outcome.FAILED),
    (("mail", "STARTTLS"), Reply(454, ("4.7.0 Temporary authentication failure",)), Outcome.INCONCLUSIVE),
])
def test_auth_tls_only(ehlo, reply, expected):
    """Offered before STARTTLS fails; 334/235/535 to a bogus plaintext AUTH fails; 503/530/538 pass."""
    assert evaluate_auth_tls_only(_snapshot(ehlo), AuthAttempt(25, reply, "")).outcome is expected


def test_auth_mechanisms_both_spellings():
    """``AUTH PLAIN LOGIN`` and the old ``AUTH=PLAIN`` are both read."""
    assert auth_mechanisms(Reply(250, ("mail", "AUTH PLAIN LOGIN", "AUTH=CRAM-MD5"))) == {"PLAIN", "LOGIN", "CRAM-MD5"}
    assert auth_mechanisms(Reply(250, ("mail", "AUTHX FOO"))) == frozenset()


def _repeat(replies: tuple[Reply, ...], cut: str | None, limit: int = 3, control: Reply | None = OK,
            control_cut: str | None = None, note: str = "") -> RepeatResult:
    return RepeatResult("25-plain", "alice@example.com", limit, replies, cut, "", OK, control=control,
                        control_address="postmaster@example.com", control_cut=control_cut, note=note)


CUT_421 = Reply(421, ("4.7.0 Error: too many errors",))


def test_harvest_cut_off_within_the_limit_passes_and_cites_the_policy():
    """Control accepted, unknown recipients refused, then 421 or a disconnect within the limit: a pass
    that names the policy leaf whose threshold decided it."""
    evaluation = evaluate_harvest(_repeat((REFUSED, REFUSED, REFUSED, CUT_421), "attempt 4 answered 421"))
    assert evaluation.passed and evaluation.policy_keys == ("smtp.harvest_attempts",)
    assert evaluate_harvest(_repeat((REFUSED, REFUSED), "connection ended at attempt 3")).passed


def test_harvest_without_cut_off_fails():
    """Every unknown recipient refused and no cut-off after limit + 1: a failure naming the count."""
    evaluation = evaluate_harvest(_repeat((REFUSED,) * 4, None))
    assert evaluation.outcome is Outcome.FAILED
    assert "4 unknown recipients answered in one session" in evaluation.message
    assert "without 421 or disconnect" in evaluation.message


@pytest.mark.parametrize(("control", "control_cut"), [
    (None, "server closed the connection before reply to RCPT"),
    (REFUSED, None),
    (GREYLISTED, None),
])
def test_harvest_needs_an_accepted_control_recipient(control, control_cut):
    """A server that drops or refuses the control recipient (an address that exists) cannot pass:
    the cut-off could be its answer to every RCPT."""
    evaluation = evaluate_harvest(_repeat((), None, control=control, control_cut=control_cut))
    assert evaluation.outcome is Outcome.INCONCLUSIVE
    assert "control RCPT TO:<postmaster@example.com>" in evaluation.message


def test_harvest_all_4xx_is_inconclusive_not_failed():
    """Greylisting (4xx to every unknown recipient) reveals nothing and decides nothing, cut off or not."""
    assert evaluate_harvest(_repeat((GREYLISTED,) * 4, None)).outcome is Outcome.INCONCLUSIVE
    assert evaluate_harvest(_repeat((GREYLISTED, GREYLISTED, CUT_421), "attempt 3 answered 421")).outcome \
        is Outcome.INCONCLUSIVE


def test_harvest_refusal_coded_250_is_an_acceptance():
    """A reply coded 250 whose text says "refused" is an acceptance: with a cut-off it cannot pass,
    without one it fails."""
    fake = Reply(250, ("2.1.5 refused: no such user",))
    cut = evaluate_harvest(_repeat((fake, fake, CUT_421), "attempt 3 answered 421"))
    assert cut.outcome is Outcome.INCONCLUSIVE and "acceptance" in cut.message
    endless = evaluate_harvest(_repeat((fake,) * 4, None))
    assert endless.outcome is Outcome.FAILED and "accepted" in endless.message


def test_harvest_drop_before_any_refusal_cannot_pass():
    """A server that ends the session at the first unknown recipient showed no judgement of recipients."""
    evaluation = evaluate_harvest(_repeat((), "connection ended at attempt 1 (closed)"))
    assert evaluation.outcome is Outcome.INCONCLUSIVE


FAILED_AUTH = Reply(535, ("5.7.8 Error: authentication failed",))


def test_bruteforce():
    """Blocked within the limit passes; every wrong password answered 535 fails; 235 fails loudly."""
    blocked = evaluate_bruteforce(_repeat((FAILED_AUTH, FAILED_AUTH, Reply(450, ("4.7.1 too many AUTH",))), "blocked"))
    assert blocked.passed and blocked.policy_keys == ("smtp.bruteforce_attempts",)
    evaluation = evaluate_bruteforce(_repeat((FAILED_AUTH,) * 4, None))
    assert evaluation.outcome is Outcome.FAILED and "535" in evaluation.message
    backend = Reply(454, ("4.7.0 Temporary authentication failure",))
    assert evaluate_bruteforce(_repeat((FAILED_AUTH, backend, FAILED_AUTH, backend), None)).outcome \
        is Outcome.INCONCLUSIVE
    accepted = evaluate_bruteforce(_repeat((FAILED_AUTH, Reply(235, ("2.7.0 ok",))), "stopped"))
    assert accepted.outcome is Outcome.FAILED and "accepted" in accepted.message


@pytest.mark.parametrize("stop", [Reply(503, ("5.5.1 AUTH not enabled",)), Reply(334, ("",))])
def test_bruteforce_stop_before_any_rejected_password_cannot_pass(stop):
    """A refusal of AUTH itself (503) or a 3xx before any 535 is no block of password guessing."""
    assert evaluate_bruteforce(_repeat((stop,), f"attempt 1 answered {stop.text}")).outcome is Outcome.INCONCLUSIVE


def test_bruteforce_message_says_whom_the_guesses_were_aimed_at():
    """Without --smtp-user the probe guesses for a random nonexistent user, and the message says so."""
    note = "no --smtp-user given: a random nonexistent user, never a real mailbox"
    evaluation = evaluate_bruteforce(_repeat((FAILED_AUTH,) * 4, None, note=note))
    assert note in evaluation.message
