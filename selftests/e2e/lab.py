"""Running the suite as a subprocess against the lab, once per lab server, for the e2e self-tests."""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
AUDIT = REPO / "lab" / "audit"
RUN_TIMEOUT_S = 1200


@dataclass(frozen=True)
class AuditRun:
    """One finished audit: exit code, output, the results JSON records and the report paths."""

    returncode: int
    stdout: str
    stderr: str
    records: list[dict] = field(default_factory=list)
    html: Path | None = None
    results_json: Path | None = None

    def verdicts(self, requirement: str) -> list[dict]:
        """Every record of one requirement."""
        return [r for r in self.records if r["requirement"] == requirement]

    def outcomes(self, requirement: str) -> dict[str, str]:
        """variant -> outcome for one requirement."""
        return {r["variant"]: r["outcome"] for r in self.verdicts(requirement)}


def run_suite(args: list[str], env: dict[str, str] | None = None, timeout: int = RUN_TIMEOUT_S,
              via_lab_audit: str | None = None) -> AuditRun:
    """Run the suite with ``args`` (through lab/audit PROFILE when given), writing into a temp dir."""
    out = Path(tempfile.mkdtemp(prefix="mailaudit-e2e-"))
    html, results = out / "report.html", out / "results.json"
    command = [str(AUDIT), via_lab_audit] if via_lab_audit else [str(REPO / ".venv/bin/python"), "-m", "pytest"]
    command += [*args, f"--html={html}", f"--results-json={results}", "-p", "no:cacheprovider", "-q"]
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env)
    records = json.loads(results.read_text())["results"] if results.exists() else []
    return AuditRun(proc.returncode, proc.stdout, proc.stderr, records,
                    html if html.exists() else None, results if results.exists() else None)


@cache
def lab_audit(profile: str, extra_args: tuple[str, ...] = ("--intrusive",)) -> AuditRun:
    """The full audit of one lab server (hardened or weak), run once per self-test session."""
    return run_suite(list(extra_args), via_lab_audit=profile)
