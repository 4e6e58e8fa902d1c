"""Outcomes and evaluations: what evaluate/ returns and the plugin's ``verdict`` helper records.

An ``Evaluation`` is a *judgement*: passed, failed, inconclusive or skipped. It can never hold
*error*: an evaluator that cannot judge raises ``mailaudit.errors.CannotJudge`` (a ProbeError),
which the plugin records as an error. So no combination of evaluations can turn an error into a
pass.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    """The outcome of one (requirement, server[, variant]) as REQUIREMENTS.md defines them."""

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"
    INCONCLUSIVE = "inconclusive"
    WAIVED = "waived"


JUDGEMENTS = (Outcome.PASSED, Outcome.FAILED, Outcome.INCONCLUSIVE, Outcome.SKIPPED)

# Worst first: how several judgements of one verdict combine.
_COMBINE_ORDER = (Outcome.FAILED, Outcome.INCONCLUSIVE, Outcome.SKIPPED, Outcome.PASSED)


@dataclass(frozen=True)
class Evaluation:
    """A judged observation: the outcome, a message saying expected vs observed, and evidence.

    ``policy_keys`` names the policy leaves (``"smtp.harvest_attempts"``) whose thresholds decided
    the verdict, so the report can cite their values and sources. ``basis`` says what a verdict
    rests on where that is not obvious (for the API: seen, confirmed or assumed field-map entries).
    """

    outcome: Outcome
    message: str
    evidence: str = ""
    evidence_name: str = "evidence"
    severity: str | None = None  # overrides the catalog's severity for this verdict (e.g. "low")
    policy_keys: tuple[str, ...] = ()
    basis: str = ""

    def __post_init__(self) -> None:
        if self.outcome not in JUDGEMENTS:
            raise ValueError(f"an Evaluation cannot be {self.outcome.value!r}: an evaluator that cannot "
                             "judge raises mailaudit.errors.CannotJudge")

    def __repr__(self) -> str:
        return f"<{self.outcome.value} verdict>"

    @property
    def passed(self) -> bool:
        """True only for a real pass."""
        return self.outcome is Outcome.PASSED

    @classmethod
    def passed_(cls, message: str, evidence: str = "", evidence_name: str = "evidence") -> Evaluation:
        """A compliant observation."""
        return cls(Outcome.PASSED, message, evidence, evidence_name)

    @classmethod
    def failed_(cls, message: str, evidence: str = "", evidence_name: str = "evidence") -> Evaluation:
        """A real non-compliant observation."""
        return cls(Outcome.FAILED, message, evidence, evidence_name)

    @classmethod
    def inconclusive_(
        cls, message: str, evidence: str = "", evidence_name: str = "evidence"
    ) -> Evaluation:
        """Probed, but the answer cannot decide (e.g. a 4xx greylisting reply)."""
        return cls(Outcome.INCONCLUSIVE, message, evidence, evidence_name)

    @classmethod
    def skipped_(cls, message: str, evidence: str = "", evidence_name: str = "evidence") -> Evaluation:
        """Not applicable, or a needed input is missing; the message says which."""
        return cls(Outcome.SKIPPED, message, evidence, evidence_name)


def combine(evaluations: Iterable[Evaluation], summary_ok: str) -> Evaluation:
    """Several judgements as one: any failure fails, else any inconclusive, else any skip, else a
    pass with ``summary_ok``. An empty list is not a pass: nothing was judged."""
    evaluations = list(evaluations)
    if not evaluations:
        raise ValueError("combine() needs at least one evaluation: nothing judged is no pass")
    evidence = "\n\n".join(e.evidence for e in evaluations if e.evidence)
    keys = tuple(dict.fromkeys(k for e in evaluations for k in e.policy_keys))
    for outcome in _COMBINE_ORDER[:-1]:
        hits = [e for e in evaluations if e.outcome is outcome]
        if hits:
            return Evaluation(outcome, "; ".join(e.message for e in hits), evidence, policy_keys=keys)
    return Evaluation(Outcome.PASSED, summary_ok, evidence, policy_keys=keys)
