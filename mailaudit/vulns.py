"""The table of known exploited SmarterMail vulnerabilities by fixed build (vulns.yaml)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from mailaudit.errors import ConfigError

VULNS_FILE = Path(__file__).with_name("vulns.yaml")


@dataclass(frozen=True)
class Vulnerability:
    """One advisory: its ID, what it is, the first build without it, and where that is stated."""

    id: str
    title: str
    fixed_in_build: int
    exploited: bool
    sources: tuple[str, ...]

    def affects(self, build: int) -> bool:
        """True when a server at this build still has the vulnerability."""
        return build < self.fixed_in_build


@cache
def load_vulnerabilities(path: Path = VULNS_FILE) -> tuple[Vulnerability, ...]:
    """Read and check the table; every entry needs an ID, a fixed build and at least one source."""
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    entries = []
    for entry in raw.get("vulnerabilities", []):
        if not entry.get("id") or not isinstance(entry.get("fixed_in_build"), int) or not entry.get("sources"):
            raise ConfigError(f"vulnerability table {path}: each entry needs id, fixed_in_build (int), sources")
        entries.append(Vulnerability(entry["id"], str(entry.get("title", "")), entry["fixed_in_build"],
                                     bool(entry.get("exploited", False)), tuple(entry["sources"])))
    return tuple(entries)
