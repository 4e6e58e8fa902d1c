"""Judging relay answers: 5xx refuses, 2xx on RCPT relays, 4xx cannot decide."""

from __future__ import annotations

from dataclasses import dataclass

from mailaudit.errors import ProtocolError
from mailaudit.probes.relay import ChannelResult, VariantResult
from mailaudit.probes.smtp import Reply
from mailaudit.verdict import Evaluation, Outcome


def evaluate_relay_variant(result: VariantResult) -> Evaluation:
    """One variant: refused at MAIL or RCPT with 5xx passes; accepted RCPT fails; 4xx is inconclusive."""
    v = result.variant
    name = f"relay variant {v.id} ({v.tries}): MAIL FROM:{v.mail_from} RCPT TO:{v.rcpt_to}"
    evidence = result.transcript
    if result.error or result.mail is None:
        raise ProtocolError(f"{name}: dialogue broke off twice: {result.error or 'no MAIL reply recorded'}",
                            evidence=evidence, evidence_name="SMTP transcript")
    if result.mail.permanent:
        return Evaluation.passed_(f"{name}: MAIL refused with {result.mail.text}", evidence, "SMTP transcript")
    if not result.mail.positive:
        return Evaluation.inconclusive_(
            f"{name}: MAIL answered {result.mail.text} ({_undecided(result.mail)}; cannot decide)", evidence,
            "SMTP transcript")
    rcpt = result.rcpt
    if rcpt is None:
        raise ProtocolError(f"{name}: MAIL accepted but no RCPT reply recorded", evidence=evidence,
                            evidence_name="SMTP transcript")
    if rcpt.positive:
        return Evaluation.failed_(
            f"{name}: RCPT accepted with {rcpt.text} — the server relays for an unauthenticated outsider",
            evidence, "SMTP transcript")
    if rcpt.permanent:
        return Evaluation.passed_(f"{name}: RCPT refused with {rcpt.text}", evidence, "SMTP transcript")
    return Evaluation.inconclusive_(
        f"{name}: RCPT answered {rcpt.text} ({_undecided(rcpt)}; cannot decide)", evidence, "SMTP transcript")


def _undecided(reply: Reply) -> str:
    """Why a reply that is neither 2xx nor 5xx decides nothing."""
    return "temporary, e.g. greylisting" if reply.transient else "neither an acceptance nor a refusal"


@dataclass(frozen=True)
class RelayObservation:
    """The external relay verdict of one server across every probed channel (for cross-checks)."""

    relayed_variants: tuple[str, ...]
    refused_variants: tuple[str, ...]
    undecided_variants: tuple[str, ...]


def observe_relay(channels: list[ChannelResult]) -> RelayObservation:
    """Summarise every channel: which channel/variant pairs relayed, were refused, or undecided.

    A variant whose dialogue broke off is left out when another one relayed (that alone proves
    the relay); otherwise its error is raised, since "refused everywhere" cannot be concluded."""
    relayed, refused, undecided = [], [], []
    errors: list[ProtocolError] = []
    for channel in channels:
        for vid, result in channel.results.items():
            key = f"{channel.channel.id}/{vid}"
            try:
                outcome = evaluate_relay_variant(result)
            except ProtocolError as exc:
                errors.append(exc)
                continue
            if outcome.outcome is Outcome.FAILED:
                relayed.append(key)
            elif outcome.passed:
                refused.append(key)
            else:
                undecided.append(key)
    if errors and not relayed:
        raise errors[0]
    return RelayObservation(tuple(relayed), tuple(refused), tuple(undecided))
