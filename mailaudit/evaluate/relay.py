"""Judging relay answers: 5xx refuses, 2xx on RCPT relays, 4xx cannot decide."""

from __future__ import annotations

from dataclasses import dataclass

from mailaudit.errors import ProtocolError
from mailaudit.probes.relay import ChannelResult, VariantResult
from mailaudit.verdict import Evaluation


def evaluate_relay_variant(result: VariantResult) -> Evaluation:
    """One variant: refused at MAIL or RCPT with 5xx passes; accepted RCPT fails; 4xx is inconclusive."""
    v = result.variant
    name = f"relay variant {v.id} ({v.tries}): MAIL FROM:{v.mail_from} RCPT TO:{v.rcpt_to}"
    evidence = result.transcript
    if result.error:
        raise ProtocolError(f"{name}: dialogue broke off twice: {result.error}")
    if result.mail is None:
        return Evaluation.inconclusive_(f"{name}: no MAIL reply recorded", evidence, "SMTP transcript")
    if result.mail.permanent:
        return Evaluation.passed_(f"{name}: MAIL refused with {result.mail.text}", evidence, "SMTP transcript")
    if not result.mail.positive:
        return Evaluation.inconclusive_(
            f"{name}: MAIL answered {result.mail.text} (temporary; cannot decide)", evidence, "SMTP transcript")
    rcpt = result.rcpt
    assert rcpt is not None
    if rcpt.positive:
        return Evaluation.failed_(
            f"{name}: RCPT accepted with {rcpt.text} — the server relays for an unauthenticated outsider",
            evidence, "SMTP transcript")
    if rcpt.permanent:
        return Evaluation.passed_(f"{name}: RCPT refused with {rcpt.text}", evidence, "SMTP transcript")
    return Evaluation.inconclusive_(
        f"{name}: RCPT answered {rcpt.text} (temporary, e.g. greylisting; cannot decide)", evidence, "SMTP transcript")


@dataclass(frozen=True)
class RelayObservation:
    """The external relay verdict of one server across every probed channel (for cross-checks)."""

    relayed_variants: tuple[str, ...]
    refused_variants: tuple[str, ...]
    undecided_variants: tuple[str, ...]


def observe_relay(channels: list[ChannelResult]) -> RelayObservation:
    """Summarise every channel: which channel/variant pairs relayed, were refused, or undecided."""
    relayed, refused, undecided = [], [], []
    for channel in channels:
        for vid, result in channel.results.items():
            key = f"{channel.channel.id}/{vid}"
            outcome = evaluate_relay_variant(result)
            if outcome.outcome.value == "failed":
                relayed.append(key)
            elif outcome.passed:
                refused.append(key)
            else:
                undecided.append(key)
    return RelayObservation(tuple(relayed), tuple(refused), tuple(undecided))
