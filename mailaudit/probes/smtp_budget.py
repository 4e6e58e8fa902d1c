"""The SMTP family's politeness bounds for one server: connection slots and the shared deadline.

``ConnectionSlots`` caps the connections open at once (``smtp.max_connections_per_server``);
``ServerBudget`` bounds the wall time of all SMTP dialogues with one server together
(``smtp.server_deadline_s``). Both are thread-safe: the relay channels run side by side, and the
fleet probes a server while its tests run.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from mailaudit.budget import Deadline

CONNECTIONS_KEY = "smtp.max_connections_per_server"
DEADLINE_KEY = "smtp.server_deadline_s"


class ConnectionSlots:
    """At most ``limit`` connections to one server open at once (``smtp.max_connections_per_server``).

    Every ``SmtpSession`` holds one slot from its TCP connect until it drops the connection. The
    relay channels run side by side and the fleet probes while the tests run, so several dialogues
    may want a connection at once: the slots keep them within the limit (servers that share an IP
    share its slots); ``peak`` records the most ever held at once, so a self-test can prove the bound."""

    def __init__(self, limit: int, server: str) -> None:
        if limit < 1:
            raise ValueError(f"{CONNECTIONS_KEY} must be at least 1, not {limit}")
        self.limit, self.server = limit, server
        self._free = threading.BoundedSemaphore(limit)
        self._lock = threading.Lock()
        self.open = 0
        self.peak = 0

    def acquire(self, timeout: float) -> bool:
        """Take a slot, waiting at most ``timeout`` seconds; False when none became free."""
        if not self._free.acquire(timeout=max(0.0, timeout)):
            return False
        with self._lock:
            self.open += 1
            self.peak = max(self.peak, self.open)
        return True

    def release(self) -> None:
        """Give a slot back."""
        with self._lock:
            self.open -= 1
        self._free.release()


@dataclass
class ServerBudget:
    """The SMTP family's bounds for one server: the time all its dialogues may take together
    (``smtp.server_deadline_s``) and its connection slots.

    Only wall time during which at least one SMTP dialogue with the server runs counts (tests of
    other families may run in between); dialogues running side by side count once, so they all
    share one end: a tarpit holds up the whole family for at most ``seconds``. Thread-safe."""

    server: str
    seconds: float
    slots: ConnectionSlots
    spent: float = 0.0  # busy time of the periods already over
    _active: int = field(default=0, repr=False)
    _busy_since: float = field(default=0.0, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @contextlib.contextmanager
    def dialogue(self) -> Iterator[Deadline]:
        """The deadline of one dialogue: now plus what is left of the budget."""
        with self._lock:
            now = time.monotonic()
            if self._active == 0:
                self._busy_since = now
            left = self.seconds - self.spent - (now - self._busy_since)
            self._active += 1
        try:
            yield Deadline(now + left, f"SMTP dialogues with {self.server}", self.seconds, DEADLINE_KEY)
        finally:
            with self._lock:
                self._active -= 1
                if self._active == 0:
                    self.spent += time.monotonic() - self._busy_since
