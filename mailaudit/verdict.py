"""Outcomes and evaluations: what evaluate/ returns and tests assert on."""

from __future__ import annotations

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


@dataclass(frozen=True)
class Evaluation:
    """A judged observation: the outcome, a message saying expected vs observed, and evidence."""

    outcome: Outcome
    message: str
    evidence: str = ""
    evidence_name: str = "evidence"
    severity: str | None = None  # overrides the catalog's severity for this verdict (e.g. "low")

    def __repr__(self) -> str:
        # Short on purpose: pytest prints it under a failed assert, and the message and evidence
        # are already in the report.
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


def worst(evaluations: list[Evaluation], summary_ok: str) -> Evaluation:
    """Combine several evaluations: any failure fails, else any inconclusive, else a pass."""
    for outcome in (Outcome.FAILED, Outcome.INCONCLUSIVE, Outcome.SKIPPED):
        hits = [e for e in evaluations if e.outcome is outcome]
        if hits:
            message = "; ".join(e.message for e in hits)
            evidence = "\n\n".join(e.evidence for e in evaluations if e.evidence)
            return Evaluation(outcome, message, evidence)
    evidence = "\n\n".join(e.evidence for e in evaluations if e.evidence)
    return Evaluation.passed_(summary_ok, evidence)
