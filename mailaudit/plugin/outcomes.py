"""How a requirement test ends, and how pytest's phases become the suite's six outcomes.

The ``verdict`` helper ends a test with typed exceptions: ``VerdictFailed`` (a failure, carrying
the requirement's message only) and ``VerdictEnded`` (skipped, inconclusive or waived, with the
outcome as an attribute). ``decide`` reads a phase's exception and returns the one ``Decision``
every output then shows:

- a ``ProbeError`` anywhere (fixture or test body) is an *error*: one plain line;
- any other exception is an *internal error* of the suite: an error whose traceback is kept;
- a test body that returns without reaching the verdict helper is an internal error too.

pytest has no "error" outcome for the call phase (only setup and teardown can error), so
``apply_to_report`` reports an error raised while judging as an error of the setup phase: then
the terminal, JUnit XML and pytest-html all count it as an error, never as a failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn

import pytest

from mailaudit.errors import ProbeError
from mailaudit.redact import redact
from mailaudit.verdict import Outcome

NO_VERDICT = ("the test returned without calling the verdict helper, so nothing was judged "
              "(a bug in the suite, not a finding about the server)")


class VerdictFailed(pytest.fail.Exception):
    """Raised by the verdict helper for a failed requirement: the message is all pytest shows."""

    def __init__(self, message: str) -> None:
        super().__init__(message, pytrace=False)


class VerdictEnded(pytest.skip.Exception):
    """Ends a test as skipped, inconclusive or waived; the outcome travels as a typed attribute."""

    def __init__(self, outcome: Outcome, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome


def inconclusive(message: str) -> NoReturn:
    """End the current test (or fixture) as *inconclusive*: probed, but the answer cannot decide."""
    raise VerdictEnded(Outcome.INCONCLUSIVE, message)


@dataclass(frozen=True)
class Decision:
    """The suite's outcome for one test, with the message an auditor reads."""

    outcome: Outcome
    message: str
    internal: bool = False  # an error of the suite's own code, not of the server
    evidence: tuple[tuple[str, str], ...] = ()  # (name, text) gathered before a probe error

    @property
    def skip_like(self) -> bool:
        """Outcomes pytest reports as skipped."""
        return self.outcome in (Outcome.SKIPPED, Outcome.INCONCLUSIVE, Outcome.WAIVED)


def decide(when: str, exc: BaseException | None, judged: Outcome | None, judged_message: str) -> Decision | None:
    """The outcome of one phase, or None when this phase decides nothing (a passed setup or
    teardown). ``judged`` is the outcome the verdict helper recorded, if it was reached."""
    if exc is None:
        if when != "call":
            return None
        if judged is None:
            return Decision(Outcome.ERROR, NO_VERDICT, internal=True)
        return Decision(judged, judged_message)
    if isinstance(exc, VerdictEnded):
        return Decision(exc.outcome, str(exc.msg))
    if isinstance(exc, VerdictFailed):
        return Decision(Outcome.FAILED, str(exc.msg))
    if isinstance(exc, pytest.skip.Exception):
        return Decision(Outcome.SKIPPED, str(exc.msg).removeprefix("Skipped: "))
    if isinstance(exc, ProbeError):
        evidence = ((exc.evidence_name, exc.evidence),) if exc.evidence else ()
        return Decision(Outcome.ERROR, _one_line(str(exc)), evidence=evidence)
    return Decision(Outcome.ERROR, f"internal error in mailaudit ({type(exc).__name__}: {_one_line(str(exc))}); "
                                   "a bug in the suite, not a finding about the server", internal=True)


def _one_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " / ".join(lines) if lines else "no detail"


def apply_to_report(report: pytest.TestReport, decision: Decision, server: str, location: tuple[str, int]) -> None:
    """Make pytest's report tell the decision (see the module docstring for errors while judging)."""
    message = redact(decision.message)
    if decision.outcome is Outcome.ERROR:
        report.outcome = "failed"
        if report.when == "call":
            report.when = "setup"
        report.longrepr = (redact(f"{decision.message}\n{report.longreprtext}") if decision.internal
                           else f"{server or 'probe'}: {message}")
        return
    if decision.skip_like:
        report.outcome = "skipped"
        shown = message if decision.outcome is Outcome.SKIPPED else f"{decision.outcome.value}: {message}"
        report.longrepr = (location[0], location[1], shown)
        return
    if decision.outcome is Outcome.FAILED:
        report.outcome = "failed"
        report.longrepr = message
