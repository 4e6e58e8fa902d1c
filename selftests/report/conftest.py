"""Fixtures of the report self-tests: the lab audits' auditor's reports and their PDFs."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from mailaudit.report import default_report_path, write_audit_report
from selftests.e2e.lab import AuditRun
from selftests.report.browser import Browser


@dataclass(frozen=True)
class LabReport:
    """One lab audit and its auditor's report (written by the plugin, else rendered here)."""

    run: AuditRun
    html: Path
    written_by_plugin: bool

    @property
    def failed_records(self) -> list[dict]:
        """The run's failed verdicts."""
        return [r for r in self.run.records if r["outcome"] == "failed"]


def lab_report(run: AuditRun) -> LabReport:
    """The report of a lab run: the plugin's ``<results stem>-audit.html`` beside the results JSON;
    until the plugin writes it, the same writer renders it from the run's results document."""
    assert run.results_json is not None, f"the audit wrote no results JSON:\n{run.stderr[-2000:]}"
    path = default_report_path(run.results_json)
    if path.exists():
        return LabReport(run, path, True)
    write_audit_report(run.document, path, run.results_json.parent)
    return LabReport(run, path, False)


@pytest.fixture(scope="session")
def weak_report(weak_run: AuditRun) -> LabReport:
    """The weak lab server's auditor's report."""
    return lab_report(weak_run)


@pytest.fixture(scope="session")
def hardened_report(hardened_run: AuditRun) -> LabReport:
    """The hardened lab server's auditor's report."""
    return lab_report(hardened_run)


@pytest.fixture(scope="session")
def weak_pdf(weak_report: LabReport) -> Path:
    """The weak report printed to PDF by Chromium (as a user's print dialog would, A4 from @page)."""
    path = weak_report.html.with_suffix(".pdf")
    with Browser() as browser:
        browser.open(weak_report.html)
        browser.pdf(path)
    return path


def pdf_text(path: Path) -> str:
    """The PDF's text in the order it was drawn (poppler's ``pdftotext -raw``), lines joined."""
    out = subprocess.run(["pdftotext", "-raw", str(path), "-"], capture_output=True, text=True, check=True, timeout=60)
    return " ".join(out.stdout.replace("-\n", "-").split())  # a line broken after a hyphen is one word
