"""Requirement metadata (title, severity, sources, remediation) loaded from catalog.yaml."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from mailaudit.errors import ConfigError

CATALOG_FILE = Path(__file__).with_name("catalog.yaml")
SEVERITIES = ("critical", "high", "medium", "low", "info")


@dataclass(frozen=True)
class Requirement:
    """One hardening requirement: its stable ID and what an auditor needs to read about it."""

    id: str
    title: str
    severity: str
    sources: tuple[str, ...]
    remediation: str


@cache
def load_catalog(path: Path = CATALOG_FILE) -> dict[str, Requirement]:
    """Read and check the catalog; every entry needs a title, a known severity and sources."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    catalog: dict[str, Requirement] = {}
    for req_id, entry in raw.items():
        if entry.get("severity") not in SEVERITIES:
            raise ConfigError(f"catalog {req_id}: severity must be one of {', '.join(SEVERITIES)}")
        if not entry.get("title") or not entry.get("sources"):
            raise ConfigError(f"catalog {req_id}: title and sources are required")
        catalog[req_id] = Requirement(
            id=req_id,
            title=entry["title"],
            severity=entry["severity"],
            sources=tuple(entry["sources"]),
            remediation=entry.get("remediation", ""),
        )
    return catalog


def requirement(req_id: str) -> Requirement:
    """The catalog entry for an ID; an unknown ID is a ConfigError."""
    try:
        return load_catalog()[req_id]
    except KeyError:
        raise ConfigError(f"unknown requirement ID {req_id!r} (not in mailaudit/catalog.yaml)") from None
