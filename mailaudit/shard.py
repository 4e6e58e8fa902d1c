"""Splitting a fleet across machines (``--shard K/N``): each server in exactly one shard.

The split depends only on the server names: they are ordered by name (case-insensitively) and dealt
out in turn, so shard 1 of 2 gets the 1st, 3rd, 5th... name. Every machine, every night, computes
the same split from the same inventory, whatever the order of the file or the machine's locale;
shards differ in size by at most one server. Adding or removing a server may move others to
another shard, which is harmless: each night's shards are merged whole (``python -m mailaudit.merge``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TypeVar

from mailaudit.errors import ConfigError

T = TypeVar("T")
MAX_SHARDS = 1000
_SHARD = re.compile(r"\s*([0-9]{1,4})\s*/\s*([0-9]{1,4})\s*", re.ASCII)


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/5"`` -> ``(2, 5)``; anything else is a ConfigError naming ``--shard``."""
    match = _SHARD.fullmatch(text or "")
    if match is None:
        raise ConfigError(f"--shard {text[:20]!r}: expected K/N, e.g. 1/4 (shard K of N)")
    k, n = int(match.group(1)), int(match.group(2))
    if not 1 <= n <= MAX_SHARDS:
        raise ConfigError(f"--shard {text.strip()}: N must be between 1 and {MAX_SHARDS}")
    if not 1 <= k <= n:
        raise ConfigError(f"--shard {text.strip()}: K must be between 1 and N ({n})")
    return k, n


def shard_key(name: str) -> tuple[str, str]:
    """The order servers are dealt out in: by name without regard to case (then by exact name)."""
    return name.rstrip(".").casefold(), name


def select_shard(servers: Sequence[T], k: int, n: int, name: Callable[[T], str] = str) -> tuple[T, ...]:
    """The servers of shard ``k`` of ``n`` (1-based), in their given order. ``name`` gives a
    server's name (default ``str``: works for names and inventory entries). The union of all
    shards is every server, each exactly once; a shard may be empty when ``n`` exceeds the count."""
    if not 1 <= k <= n:
        raise ValueError(f"shard {k}/{n}: K must be between 1 and N")
    ranked = sorted(range(len(servers)), key=lambda i: (*shard_key(name(servers[i])), i))
    chosen = set(ranked[k - 1::n])
    return tuple(server for i, server in enumerate(servers) if i in chosen)
