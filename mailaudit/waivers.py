"""Waivers: an auditor-approved exception that turns a known failure into *waived* until it expires."""

from __future__ import annotations

import datetime as dt
import fnmatch
from dataclasses import dataclass
from pathlib import Path

import yaml

from mailaudit.errors import ConfigError


@dataclass(frozen=True)
class Waiver:
    """Covers failures of one requirement on matching servers (and variants) until ``expires``."""

    requirement: str
    reason: str
    expires: dt.date
    server: str = "*"
    variant: str = "*"

    def covers(self, requirement: str, server: str, variant: str, today: dt.date) -> bool:
        """True if this waiver is in force for that verdict."""
        return (
            requirement == self.requirement
            and today <= self.expires
            and fnmatch.fnmatch(server, self.server)
            and fnmatch.fnmatch(variant or "", self.variant)
        )


def load_waivers(path: Path) -> tuple[Waiver, ...]:
    """Read a waivers file: a YAML list of {requirement, reason, expires, server?, variant?}."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"--waivers {path}: unreadable ({exc.__class__.__name__})") from None
    if not isinstance(data, list):
        raise ConfigError(f"--waivers {path}: expected a list of waivers")
    return tuple(_waiver(entry, i, path) for i, entry in enumerate(data))


def _waiver(entry: object, index: int, path: Path) -> Waiver:
    where = f"--waivers {path}: entry {index + 1}"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected a mapping")
    unknown = set(entry) - {"requirement", "reason", "expires", "server", "variant"}
    if unknown:
        raise ConfigError(f"{where}: unknown key '{sorted(unknown)[0]}'")
    for key in ("requirement", "reason", "expires"):
        if not entry.get(key):
            raise ConfigError(f"{where}: '{key}' is required")
    if not isinstance(entry["expires"], dt.date):
        raise ConfigError(f"{where}: 'expires' must be a date (YYYY-MM-DD)")
    return Waiver(
        requirement=str(entry["requirement"]),
        reason=str(entry["reason"]),
        expires=entry["expires"],
        server=str(entry.get("server", "*")),
        variant=str(entry.get("variant", "*")),
    )
