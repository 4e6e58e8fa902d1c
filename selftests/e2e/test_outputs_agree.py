"""Every output tells the same story: on the lab, the JUnit XML, the terminal, pytest-html and the
results JSON count the same outcomes, and an unreachable API is an error in all of them."""

from __future__ import annotations

import html
import json
import os
import re
import xml.etree.ElementTree as ET
from collections import Counter

import pytest

from selftests.e2e.lab import REPO, AuditRun, run_suite
from selftests.e2e.test_smtp_lab import _lab_env


def _junit_counts(run: AuditRun) -> dict[str, int]:
    suite = next(ET.parse(run.junit).getroot().iter("testsuite"))
    return {key: int(suite.get(key)) for key in ("tests", "failures", "errors", "skipped")}


def _json_counts(run: AuditRun) -> Counter[str]:
    return Counter(record["outcome"] for record in run.records)


def _html_rows(run: AuditRun) -> dict[str, dict]:
    """pytest-html's rows by node id (its data lives in a JSON attribute of the page)."""
    page = run.html.read_text(encoding="utf-8")
    blob = json.loads(html.unescape(re.search(r'data-jsonblob="([^"]*)"', page).group(1)))
    return {nodeid: entries[-1] for nodeid, entries in blob["tests"].items()}


@pytest.mark.lab
def test_junit_counts_equal_the_json_counts_on_the_weak_lab(weak_run: AuditRun):
    """JUnit failures = failed, errors = error, skipped = skipped + inconclusive + waived, every
    testcase's outcome property equals its record's outcome, and the terminal's per-server line
    gives the same counts as the JSON summary."""
    junit, outcomes = _junit_counts(weak_run), _json_counts(weak_run)
    assert junit["tests"] == len(weak_run.records)
    assert junit["failures"] == outcomes["failed"]
    assert junit["errors"] == outcomes["error"]
    assert junit["skipped"] == outcomes["skipped"] + outcomes["inconclusive"] + outcomes["waived"]
    properties = {}
    for case in ET.parse(weak_run.junit).getroot().iter("testcase"):
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        properties[(props["requirement"], props["variant"])] = props["outcome"]
    assert properties == {(r["requirement"], r["variant"]): r["outcome"] for r in weak_run.records}
    [summary] = weak_run.document["servers"]
    line = next(line for line in weak_run.stdout.splitlines() if line.startswith("mailaudit mail.weak.test:"))
    records = summary["records"]
    assert f"verdicts: {records['failed']} failed" in line and f"{records['passed']} passed" in line, line


@pytest.mark.lab
def test_evidence_holds_no_tracebacks_or_machine_paths(weak_run: AuditRun, hardened_run: AuditRun):
    """The evidence files (sslyze's JSON among them) hold no Python traceback and no path of the
    auditing machine's Python (site-packages)."""
    for run in (weak_run, hardened_run):
        evidence = [p for p in run.output_files() if p.parent.name.endswith("-evidence")]
        assert evidence
        for path in evidence:
            text = path.read_text(encoding="utf-8", errors="replace")
            assert "site-packages" not in text and "Traceback (most recent call last)" not in text, path


@pytest.mark.lab
def test_an_unreachable_api_is_an_error_in_every_output():
    """--api-url at a dead port: every API requirement is an error in the JSON, a JUnit <error>, an
    ERROR in the terminal and an Error in pytest-html's Result column; none is a failure."""
    args = ["--server", "mail.weak.test", "--dns-server", "127.0.0.54", "--ca-file", str(REPO / "lab/run/ca.pem"),
            "--policy", str(REPO / "lab/dns/lab-policy.yaml"), "--api-url", "https://{server}:9",
            "tests_api/test_api_settings.py"]
    run = run_suite(args, env={**os.environ, **_lab_env()}, timeout=300)
    assert run.records and {r["outcome"] for r in run.records} == {"error"}, run.stdout[-2000:]
    assert all("127.0.0.20:9" in r["message"] or ":9" in r["message"] for r in run.records)
    junit = _junit_counts(run)
    assert (junit["errors"], junit["failures"]) == (len(run.records), 0)
    assert f"{len(run.records)} errors" in run.stdout.strip().splitlines()[-1]
    rows = _html_rows(run)
    assert rows and all(">Error<" in row["resultsTableRow"][0] for row in rows.values())
    assert run.returncode == 6
