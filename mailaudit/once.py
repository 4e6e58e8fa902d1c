"""Each probe of a server runs once, whoever asks first: a test, or the fleet probing ahead of it.

A prober keeps one ``Once`` and asks it for every dialogue by key. The first caller runs the probe
while later callers wait for it; its result, or the ``ProbeError`` it raised, is kept and handed to
everyone who asks afterwards. Anything else it raised (a skip, a bug) is not kept: each caller
meets it again in its own test, where the plugin reports it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from mailaudit.errors import ProbeError

T = TypeVar("T")


@dataclass
class _Entry:
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: bool = False
    value: Any = None
    error: ProbeError | None = None


class Once:
    """A thread-safe cache of probe results (or probe errors) by key."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}

    def get(self, key: str, probe: Callable[[], T]) -> T:
        """The result of ``probe`` for ``key``, running it only if nobody has yet."""
        with self._lock:
            entry = self._entries.setdefault(key, _Entry())
        with entry.lock:
            if not entry.done:
                try:
                    entry.value = probe()
                except ProbeError as exc:
                    entry.error = exc
                entry.done = True
        if entry.error is not None:
            raise entry.error
        return entry.value

    def __contains__(self, key: str) -> bool:
        entry = self._entries.get(key)
        return entry is not None and entry.done
