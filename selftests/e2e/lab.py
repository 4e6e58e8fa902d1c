"""Running the suite as a subprocess against the lab, once per lab server, for the e2e self-tests."""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from mailaudit.schema import validate_document

REPO = Path(__file__).resolve().parents[2]
AUDIT = REPO / "lab" / "audit"
RUN_TIMEOUT_S = 1200


@dataclass(frozen=True)
class AuditRun:
    """One finished audit: exit code, output, the results JSON records and the output folder.

    Every output of the run (pytest-html, the results JSON, JUnit XML, the auditor's report and
    the evidence files) lands in ``out_dir``."""

    returncode: int
    stdout: str
    stderr: str
    records: list[dict] = field(default_factory=list)
    html: Path | None = None
    results_json: Path | None = None
    out_dir: Path | None = None
    document: dict = field(default_factory=dict)

    def verdicts(self, requirement: str) -> list[dict]:
        """Every record of one requirement."""
        return [r for r in self.records if r["requirement"] == requirement]

    def outcomes(self, requirement: str) -> dict[str, str]:
        """variant -> outcome for one requirement."""
        return {r["variant"]: r["outcome"] for r in self.verdicts(requirement)}

    @property
    def junit(self) -> Path | None:
        """The JUnit XML file, when the run wrote one."""
        path = self.out_dir / "junit.xml" if self.out_dir else None
        return path if path and path.exists() else None

    def output_files(self) -> list[Path]:
        """Every file the run wrote (reports, JSON, JUnit, evidence)."""
        if self.out_dir is None:
            return []
        return sorted(p for p in self.out_dir.rglob("*") if p.is_file())

    def all_text(self) -> str:
        """The terminal output and the text of every file the run wrote, for leak and escape checks."""
        texts = [self.stdout, self.stderr]
        texts += [p.read_text(encoding="utf-8", errors="replace") for p in self.output_files()]
        return "\n".join(texts)


def run_suite(args: list[str], env: dict[str, str] | None = None, timeout: int = RUN_TIMEOUT_S,
              via_lab_audit: str | None = None, cwd: Path = REPO) -> AuditRun:
    """Run the suite with ``args`` (through lab/audit PROFILE when given), writing into a temp dir."""
    out = Path(tempfile.mkdtemp(prefix="mailaudit-e2e-"))
    html, results = out / "report.html", out / "results.json"
    command = [str(AUDIT), via_lab_audit] if via_lab_audit else [str(REPO / ".venv/bin/python"), "-m", "mailaudit"]
    command += [*args, f"--html={html}", f"--results-json={results}", f"--junitxml={out / 'junit.xml'}",
                "-p", "no:cacheprovider", "-q"]
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    document = json.loads(results.read_text()) if results.exists() else {}
    problems = validate_document(document) if document else []
    assert not problems, f"the results JSON breaks its schema: {problems[:5]}"
    return AuditRun(proc.returncode, proc.stdout, proc.stderr, document.get("results", []),
                    html if html.exists() else None, results if results.exists() else None, out, document)


@cache
def lab_audit(profile: str, extra_args: tuple[str, ...] = ("--intrusive",)) -> AuditRun:
    """The full audit of one lab server (hardened or weak), run once per self-test session."""
    return run_suite(list(extra_args), via_lab_audit=profile)
