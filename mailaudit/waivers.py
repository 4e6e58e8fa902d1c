"""Waivers: an auditor-approved exception that turns a known failure into *waived* until it expires.

A waivers file is a YAML list of ``{requirement, reason, expires, server?, variant?}``. It is read
before any probe and refused with one line when an entry is wrong: the requirement must be a
catalog ID (exactly, case included), the reason must say something, ``expires`` must be a date
(``2027-03-31``, not a date and time). After the run, :func:`review_waivers` names the waivers that
expired (with the failures that are back) and those that matched nothing.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from mailaudit.catalog import load_catalog
from mailaudit.errors import ConfigError
from mailaudit.yamlsafe import load_yaml

KEYS = ("requirement", "reason", "expires", "server", "variant")
MAX_WAIVERS_BYTES = 1_000_000


@dataclass(frozen=True)
class Waiver:
    """Covers failures of one requirement on matching servers (and variants) until ``expires``."""

    requirement: str
    reason: str
    expires: dt.date
    server: str = "*"
    variant: str = "*"

    def matches(self, requirement: str, server: str, variant: str) -> bool:
        """True if the verdict is this waiver's requirement, server and variant (any date)."""
        return (
            requirement == self.requirement
            and fnmatch.fnmatchcase(server.lower(), self.server.lower())  # host names: any case
            and fnmatch.fnmatchcase(variant or "", self.variant)
        )

    def expired(self, today: dt.date) -> bool:
        """True from the day after ``expires``."""
        return today > self.expires

    def covers(self, requirement: str, server: str, variant: str, today: dt.date) -> bool:
        """True if this waiver is in force for that verdict."""
        return not self.expired(today) and self.matches(requirement, server, variant)

    def describe(self) -> str:
        """``TLS-NO-LEGACY-TLS on mail.example.com (variant 993-*)``, for messages."""
        variant = "" if self.variant == "*" else f" (variant {self.variant})"
        return f"{self.requirement} on {self.server}{variant}"


def load_waivers(path: Path, known_ids: Collection[str] | None = None) -> tuple[Waiver, ...]:
    """Read and check a waivers file (``known_ids`` defaults to the catalog's IDs)."""
    if known_ids is None:
        known_ids = load_catalog().keys()
    data = load_yaml(path, f"--waivers {path}", max_bytes=MAX_WAIVERS_BYTES)
    if data is None:
        return ()
    if not isinstance(data, list):
        raise ConfigError(f"--waivers {path}: expected a list of waivers")
    return tuple(_waiver(entry, f"--waivers {path}: entry {i + 1}", known_ids) for i, entry in enumerate(data))


def _waiver(entry: object, where: str, known_ids: Collection[str]) -> Waiver:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected a mapping")
    unknown = [k for k in entry if k not in KEYS]
    if unknown:
        raise ConfigError(f"{where}: unknown key {str(unknown[0])[:40]!r} (known: {', '.join(KEYS)})")
    for key in ("requirement", "reason", "expires"):
        if entry.get(key) is None:
            raise ConfigError(f"{where}: '{key}' is required")
    return Waiver(
        requirement=_requirement(entry["requirement"], where, known_ids),
        reason=_text(entry["reason"], "reason", where),
        expires=_date(entry["expires"], where),
        server=_glob(entry.get("server", "*"), "server", where),
        variant=_glob(entry.get("variant", "*"), "variant", where),
    )


def _requirement(value: object, where: str, known_ids: Collection[str]) -> str:
    """A catalog ID, matched exactly; a near miss (case) is named."""
    if not isinstance(value, str):
        raise ConfigError(f"{where}: 'requirement' must be a requirement ID")
    if value in known_ids:
        return value
    near = next((k for k in known_ids if k.casefold() == value.strip().casefold()), None)
    hint = f"; IDs are case-sensitive: did you mean {near}?" if near else " (not in the catalog)"
    raise ConfigError(f"{where}: unknown requirement {value[:60]!r}{hint}")


def _text(value: object, key: str, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: '{key}' must say why (non-empty text)")
    return value.strip()


def _date(value: object, where: str) -> dt.date:
    """A calendar date. YAML reads ``2027-03-31 10:00`` as a datetime, which is refused here."""
    if isinstance(value, dt.datetime):
        raise ConfigError(f"{where}: 'expires' must be a date (YYYY-MM-DD), not a date and time")
    if not isinstance(value, dt.date):
        raise ConfigError(f"{where}: 'expires' must be a date (YYYY-MM-DD, unquoted)")
    return value


def _glob(value: object, key: str, where: str) -> str:
    """A glob over server names or variants; a bare number (``variant: 993``) is taken as text."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: '{key}' must be a glob pattern (text)")
    return value.strip()


# --- after the run ------------------------------------------------------------------------------

@dataclass(frozen=True)
class WaiverNote:
    """One thing to tell the auditor about a waiver after the run."""

    kind: str  # "expired" or "unused"
    waiver: Waiver
    message: str


def review_waivers(waivers: Iterable[Waiver], records: Iterable[Mapping[str, object]],
                   today: dt.date) -> tuple[WaiverNote, ...]:
    """Expired waivers (one note per failure that is back, or one saying none came back) and
    waivers in force that waived nothing. ``records`` are the results records (requirement,
    server, variant, outcome)."""
    rows = [(str(r.get("requirement", "")), str(r.get("server", "")), str(r.get("variant", "")),
             str(r.get("outcome", ""))) for r in records]
    notes: list[WaiverNote] = []
    for waiver in waivers:
        matched = [row for row in rows if waiver.matches(*row[:3])]
        if waiver.expired(today):
            notes.extend(_expired_notes(waiver, matched))
        elif not any(row[3] == "waived" for row in matched):
            notes.append(WaiverNote("unused", waiver, _unused_message(waiver, matched)))
    return tuple(notes)


def _expired_notes(waiver: Waiver, matched: list[tuple[str, str, str, str]]) -> list[WaiverNote]:
    back = [row for row in matched if row[3] == "failed"]
    if not back:
        return [WaiverNote("expired", waiver, f"waiver for {waiver.describe()} expired on "
                                              f"{waiver.expires}; no failure it would cover in this run")]
    by_server: dict[tuple[str, str], list[str]] = {}
    for req, server, variant, _ in back:
        by_server.setdefault((req, server), []).append(variant)
    notes = []
    for (req, server), variants in by_server.items():
        which = f" ({variants[0]})" if len(variants) == 1 and variants[0] else (
            f" ({len(variants)} variants)" if len(variants) > 1 else "")
        notes.append(WaiverNote("expired", waiver, f"waiver for {req} on {server}{which} expired on "
                                                   f"{waiver.expires}: the failure is back"))
    return notes


def _unused_message(waiver: Waiver, matched: list[tuple[str, str, str, str]]) -> str:
    if not matched:
        return f"waiver for {waiver.describe()} (until {waiver.expires}) matched no verdict of this run"
    outcomes = ", ".join(sorted({row[3] for row in matched}))
    return (f"waiver for {waiver.describe()} (until {waiver.expires}) was not needed: "
            f"no failure to waive ({outcomes})")
