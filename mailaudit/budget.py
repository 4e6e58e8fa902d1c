"""Deadlines: the wall-clock bounds of the policy (per server and family, and per run).

A probe asks its ``Deadline`` for the timeout of each blocking step (``deadline.timeout(30)``):
it gets the smaller of what it wanted and what is left, and ``BudgetExceeded`` once nothing is
left. So a tarpit that answers every command just before the per-command timeout still cannot
stretch one family's probes of one server beyond the policy's deadline.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from mailaudit.errors import BudgetExceeded


@dataclass(frozen=True)
class Deadline:
    """A point on the monotonic clock after which the probes it bounds stop."""

    at: float
    what: str  # "SMTP probes of mail.example.com"
    seconds: float
    policy_key: str = ""  # e.g. "smtp.server_deadline_s"

    @classmethod
    def after(cls, seconds: float, what: str, policy_key: str = "") -> Deadline:
        """A deadline ``seconds`` from now."""
        return cls(time.monotonic() + seconds, what, seconds, policy_key)

    @classmethod
    def never(cls, what: str = "unbounded") -> Deadline:
        """No deadline (unit tests, tools)."""
        return cls(math.inf, what, math.inf)

    def remaining(self) -> float:
        """Seconds left (may be negative once passed)."""
        return self.at - time.monotonic()

    @property
    def expired(self) -> bool:
        """True once the deadline has passed."""
        return self.remaining() <= 0

    def check(self) -> None:
        """Raise BudgetExceeded if the deadline has passed."""
        if self.expired:
            key = f" (policy {self.policy_key})" if self.policy_key else ""
            raise BudgetExceeded(f"{self.what}: deadline of {self.seconds:g} s reached{key}")

    def timeout(self, wanted: float) -> float:
        """The timeout for one blocking step: ``wanted``, cut to what is left; raises once none is."""
        self.check()
        return max(0.001, min(wanted, self.remaining()))
