"""Requirement metadata loaded from catalog.yaml: what an auditor reads about each requirement.

Each entry has a title (the requirement sentence), a severity, what the probe expects, why it
matters, its sources, and a remediation in two parts: the steps in SmarterMail's web interface and
the generic fix (any server; Postfix examples). ``Requirement.remediation`` joins both into one
line for readers that want a single string.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from mailaudit.errors import ConfigError

CATALOG_FILE = Path(__file__).with_name("catalog.yaml")
SEVERITIES = ("critical", "high", "medium", "low", "info")
_FIELDS = {"title", "severity", "expected", "why", "sources", "remediation"}
_REMEDIATION_PARTS = {"smartermail", "generic"}


@dataclass(frozen=True)
class Requirement:
    """One hardening requirement: its stable ID and what an auditor needs to read about it."""

    id: str
    title: str
    severity: str
    sources: tuple[str, ...]
    why: str = ""
    expected: str = ""
    fix_smartermail: str = ""  # steps in SmarterMail's web interface ("" where the fix lives elsewhere)
    fix_generic: str = ""  # the fix on any server

    @property
    def remediation(self) -> str:
        """Both remediation parts as one line ("SmarterMail: ... Generic fix: ...")."""
        parts = []
        if self.fix_smartermail:
            parts.append(f"SmarterMail: {self.fix_smartermail}")
        if self.fix_generic:
            parts.append(f"Generic fix: {self.fix_generic}" if parts else self.fix_generic)
        return " ".join(parts)


@cache
def load_catalog(path: Path = CATALOG_FILE) -> dict[str, Requirement]:
    """Read and check the catalog: every entry needs a title, a known severity, what is expected,
    why it matters, sources, and at least one remediation part."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        raise ConfigError(f"catalog {path.name}: expected a mapping of requirement IDs")
    return {req_id: _requirement(req_id, entry) for req_id, entry in raw.items()}


def _requirement(req_id: str, entry: Any) -> Requirement:
    """One checked catalog entry."""
    if not isinstance(entry, dict):
        raise ConfigError(f"catalog {req_id}: expected a mapping")
    unknown = set(entry) - _FIELDS
    if unknown:
        raise ConfigError(f"catalog {req_id}: unknown field(s) {', '.join(sorted(unknown))}")
    if entry.get("severity") not in SEVERITIES:
        raise ConfigError(f"catalog {req_id}: severity must be one of {', '.join(SEVERITIES)}")
    for key in ("title", "expected", "why"):
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            raise ConfigError(f"catalog {req_id}: {key} is required (a non-empty string)")
    sources = entry.get("sources")
    if not isinstance(sources, list) or not sources or not all(isinstance(s, str) and s for s in sources):
        raise ConfigError(f"catalog {req_id}: sources is required (a list of strings)")
    smartermail, generic = _remediation(req_id, entry.get("remediation"))
    return Requirement(id=req_id, title=entry["title"].strip(), severity=entry["severity"],
                       sources=tuple(sources), why=entry["why"].strip(), expected=entry["expected"].strip(),
                       fix_smartermail=smartermail, fix_generic=generic)


def _remediation(req_id: str, value: Any) -> tuple[str, str]:
    """The two remediation parts; at least one must say something."""
    if not isinstance(value, dict) or set(value) - _REMEDIATION_PARTS:
        raise ConfigError(f"catalog {req_id}: remediation must be a mapping with smartermail and/or generic")
    parts = tuple(str(value.get(part) or "").strip() for part in ("smartermail", "generic"))
    if not any(parts):
        raise ConfigError(f"catalog {req_id}: remediation needs a smartermail or a generic step")
    return parts[0], parts[1]
