"""The verdict path, offline: every outcome through fake requirement tests, and every output agrees.

Each case runs pytest in a subprocess with only ``mailaudit.plugin`` loaded and fake tests in a
``tests_fake`` folder (through pytest's own ``pytester`` for the single cases, as pytest-html and
pytest-xdist test their plugins; one shared run for the twelve outcomes), then reads the terminal,
the results JSON, the JUnit XML and pytest-html's data for the same verdicts.
"""

from __future__ import annotations

import html
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
POLICY = REPO / "policies" / "baseline.yaml"

FAKE_TESTS = '''
import os, signal
import pytest
from mailaudit.errors import CannotJudge, ProbeError
from mailaudit.plugin import inconclusive
from mailaudit.verdict import Evaluation


@pytest.fixture
def silent_port():
    raise ProbeError("192.0.2.1:25: no greeting within 2 s")


@pytest.fixture
def greylisted():
    inconclusive("RCPT TO answered 451 4.7.1 greylisted")


@pytest.fixture
def buggy_fixture():
    return {}["missing"]


@pytest.mark.requirement("SMTP-VRFY-EXPN")
def test_passes(target, verdict):
    """passes"""
    verdict(Evaluation.passed_("VRFY answered 252"))


@pytest.mark.requirement("SMTP-CATCHALL")
def test_fails(target, verdict):
    """fails"""
    verdict(Evaluation.failed_("RCPT TO:<random@example.test> answered 250: catch-all"))


@pytest.mark.requirement("SMTP-OPEN-RELAY")
def test_waived(target, verdict):
    """a failure a waiver covers"""
    verdict(Evaluation.failed_("relay accepted"))


@pytest.mark.requirement("SMTP-LOCAL-SPOOF")
def test_skipped(target, verdict):
    """skipped with its reason"""
    verdict(Evaluation.skipped_("no --local-recipient given"))


@pytest.mark.requirement("SMTP-AUTH-MATCH")
def test_inconclusive(target, verdict):
    """inconclusive from the evaluation"""
    verdict(Evaluation.inconclusive_("AUTH answered 454 (temporary)"))


@pytest.mark.requirement("SMTP-HARVEST-DEFENSE")
def test_inconclusive_from_fixture(target, greylisted, verdict):
    """inconclusive from a fixture"""
    verdict(Evaluation.passed_("never reached"))


@pytest.mark.requirement("SMTP-BANNER-HOSTNAME")
def test_probe_error_in_fixture(target, silent_port, verdict):
    """a probe error in a fixture"""
    verdict(Evaluation.passed_("never reached"))


@pytest.mark.requirement("TLS-VULNERABILITIES")
def test_cannot_judge_in_body(target, verdict):
    """an evaluator that cannot judge"""
    raise CannotJudge("port 25: sslyze tls_1_0_cipher_suites failed, cannot judge TLS-VULNERABILITIES")


@pytest.mark.requirement("API-RELAY")
def test_probe_error_in_body(target, verdict):
    """an API read error in the test body"""
    raise ProbeError("mail.example.test:443: cannot connect (Connection refused)")


@pytest.mark.requirement("DNS-MX")
def test_bug_in_body(target, verdict):
    """a programming error of the suite"""
    return None + 1


@pytest.mark.requirement("DNS-PTR")
def test_bug_in_fixture(target, buggy_fixture, verdict):
    """a programming error in a fixture"""
    verdict(Evaluation.passed_("never reached"))


@pytest.mark.requirement("DNS-TLSRPT")
def test_forgets_the_verdict(target, verdict):
    """returns without a verdict"""
    Evaluation.passed_("judged but never recorded")
'''

WAIVERS = """
- requirement: SMTP-OPEN-RELAY
  reason: "relay for the old scanner, replaced in March (ticket 4711)"
  expires: 2999-01-01
"""

EXPECTED = {
    "test_passes": "passed",
    "test_fails": "failed",
    "test_waived": "waived",
    "test_skipped": "skipped",
    "test_inconclusive": "inconclusive",
    "test_inconclusive_from_fixture": "inconclusive",
    "test_probe_error_in_fixture": "error",
    "test_cannot_judge_in_body": "error",
    "test_probe_error_in_body": "error",
    "test_bug_in_body": "error",
    "test_bug_in_fixture": "error",
    "test_forgets_the_verdict": "error",
}
JUNIT_ELEMENT = {"passed": None, "failed": "failure", "error": "error", "skipped": "skipped",
                 "inconclusive": "skipped", "waived": "skipped"}
HTML_RESULT = {"passed": "Passed", "failed": "Failed", "error": "Error", "skipped": "Skipped",
               "inconclusive": "Skipped", "waived": "Skipped"}


def _audit_args(out: Path, *extra: str) -> list[str]:
    # "--policy=PATH" in one piece: pytest picks its root folder before it knows the plugin's
    # options, and takes a separate absolute path for a test path (README: the mailaudit command).
    return ["-p", "mailaudit.plugin", "--server", "192.0.2.1", "--domain", "example.test",
            f"--policy={POLICY}", f"--results-json={out / 'results.json'}", f"--junitxml={out / 'junit.xml'}",
            f"--html={out / 'report.html'}", "--self-contained-html", "-p", "no:cacheprovider", "-rfEs", *extra]


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory: pytest.TempPathFactory):
    """One run of the fake requirement tests, with a waiver file, in a pytest subprocess."""
    base = tmp_path_factory.mktemp("fake")
    (base / "tests_fake").mkdir()
    (base / "tests_fake" / "test_fake.py").write_text(FAKE_TESTS, encoding="utf-8")
    (base / "waivers.yaml").write_text(WAIVERS, encoding="utf-8")
    (base / "pytest.ini").write_text("[pytest]\nmarkers =\n    requirement(id): the requirement\n", encoding="utf-8")
    out = base / "out"
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-m", "pytest", *_audit_args(out, f"--waivers={base / 'waivers.yaml'}"),
                           "tests_fake"], cwd=base, capture_output=True, text=True, timeout=120)
    return proc, out


def _name(nodeid_or_name: str) -> str:
    return re.sub(r"\[.*\]$", "", nodeid_or_name.split("::")[-1])


def test_results_json_has_the_six_outcomes(fake_run):
    """The results JSON records the suite's outcome for every fake test, internal errors marked."""
    proc, out = fake_run
    document = json.loads((out / "results.json").read_text())
    outcomes = {_name(r["nodeid"]): r["outcome"] for r in document["results"]}
    assert outcomes == EXPECTED, proc.stdout[-3000:]
    internal = {_name(r["nodeid"]) for r in document["results"] if r["internal_error"]}
    assert internal == {"test_bug_in_body", "test_bug_in_fixture", "test_forgets_the_verdict"}
    assert document["complete"] is True and document["schema"] == "mailaudit-results/1"


def test_junit_agrees_with_the_json(fake_run):
    """JUnit: failed is <failure>, error is <error>, skipped/inconclusive/waived are <skipped> whose
    message names the outcome, and each testcase's outcome property is the record's outcome."""
    _, out = fake_run
    root = ET.parse(out / "junit.xml").getroot()
    cases = {_name(c.get("name")): c for c in root.iter("testcase")}
    assert set(cases) == set(EXPECTED)
    for name, outcome in EXPECTED.items():
        case = cases[name]
        children = [c.tag for c in case if c.tag in ("failure", "error", "skipped")]
        expected = JUNIT_ELEMENT[outcome]
        assert children == ([expected] if expected else []), (name, children)
        properties = {p.get("name"): p.get("value") for p in case.iter("property")}
        assert properties["outcome"] == outcome, (name, properties)
        if outcome in ("inconclusive", "waived"):
            assert case.find("skipped").get("message").startswith(outcome + ":"), name
    suite = next(root.iter("testsuite"))
    assert (suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("1", "6", "4")


def test_terminal_agrees_with_the_json(fake_run):
    """The terminal counts the same outcomes, and its per-server line says the same as the JSON."""
    proc, out = fake_run
    last = proc.stdout.strip().splitlines()[-1]
    for text in ("1 failed", "1 passed", "1 skipped", "6 errors", "2 inconclusive", "1 waived"):
        assert text in last, last
    document = json.loads((out / "results.json").read_text())
    server = document["servers"][0]
    assert f"mailaudit 192.0.2.1: {server['verdict'].upper()}" in proc.stdout
    assert server["verdict"] == "not compliant"
    assert server["records"]["error"] == 6 and server["requirements"]["total"] == len(EXPECTED)


def test_pytest_html_agrees_with_the_json(fake_run):
    """pytest-html's Result column is pytest's category for its filters, marked with the suite's
    outcome (shown by its stylesheet), and the row's log starts with the record's message."""
    _, out = fake_run
    page = (out / "report.html").read_text()
    blob = json.loads(html.unescape(re.search(r'data-jsonblob="([^"]*)"', page).group(1)))
    rows = {}
    for nodeid, entries in blob["tests"].items():
        [entry] = entries
        rows[_name(nodeid)] = entry
    assert set(rows) == set(EXPECTED)
    for name, outcome in EXPECTED.items():
        cell = rows[name]["resultsTableRow"][0]
        assert f"verdict-{outcome}" in cell and f">{HTML_RESULT[outcome]}<" in cell, (name, cell)
        assert rows[name]["log"].startswith(f"{outcome}: "), (name, rows[name]["log"][:200])
    for name in ("test_passes", "test_fails", "test_cannot_judge_in_body", "test_probe_error_in_body"):
        assert "E   " not in rows[name]["log"] and "Traceback" not in rows[name]["log"], rows[name]["log"]


def test_internal_error_keeps_its_traceback_and_exit_status(fake_run):
    """A bug of the suite is shown with its traceback and ends the run with exit status 3."""
    proc, _ = fake_run
    assert proc.returncode == 3, proc.stdout[-2000:]
    assert "TypeError: unsupported operand" in proc.stdout and "KeyError: 'missing'" in proc.stdout
    assert "internal error in mailaudit" in proc.stdout


def test_probe_error_is_one_line_without_traceback(fake_run):
    """A probe error reads as one line naming the server, with no traceback."""
    proc, out = fake_run
    document = json.loads((out / "results.json").read_text())
    [record] = [r for r in document["results"] if _name(r["nodeid"]) == "test_probe_error_in_body"]
    assert record["message"] == "mail.example.test:443: cannot connect (Connection refused)"
    section = proc.stdout.split("test_probe_error_in_body", 1)[1].split("____", 1)[0]
    assert "Traceback" not in section and "raise ProbeError" not in section


def _run(pytester: pytest.Pytester, test_source: str, *extra: str):
    """One pytester run (in a subprocess) of a fake tests_fake/test_fake.py: the result and the JSON."""
    pytester.mkdir("tests_fake")
    (pytester.path / "tests_fake" / "test_fake.py").write_text(test_source, encoding="utf-8")
    pytester.makeini("[pytest]\nmarkers =\n    requirement(id): the requirement\n")
    out = pytester.path / "out"
    result = pytester.runpytest_subprocess(*_audit_args(out, *extra), "tests_fake", timeout=120)
    results = out / "results.json"
    document = json.loads(results.read_text()) if results.exists() else None
    return result, document


def test_a_test_without_requirement_is_one_collection_error(pytester: pytest.Pytester):
    """A test in a tests_* folder without @pytest.mark.requirement stops the run with one line, and
    no results file is written."""
    result, document = _run(pytester, "def test_orphan(target):\n    '''x'''\n")
    output = result.stdout.str() + "\n" + result.stderr.str()
    assert result.ret == 4
    lines = [line for line in output.splitlines() if line.startswith("ERROR: mailaudit:")]
    assert len(lines) == 1 and "has no @pytest.mark.requirement" in lines[0], output
    assert "Traceback" not in output and document is None


INTERRUPTED = '''
import os, signal
import pytest
from mailaudit.verdict import Evaluation


@pytest.mark.requirement("SMTP-VRFY-EXPN")
def test_first(target, verdict):
    """judged before the signal"""
    verdict(Evaluation.failed_("VRFY confirms users"))


@pytest.mark.requirement("SMTP-CATCHALL")
def test_scheduler_timeout(target, verdict):
    """the scheduler's timeout arrives here"""
    os.kill(os.getpid(), signal.SIGTERM)


@pytest.mark.requirement("SMTP-LOCAL-SPOOF")
def test_never_run(target, verdict):
    """never reached"""
    verdict(Evaluation.passed_("no"))
'''


def test_an_interrupted_run_says_it_is_incomplete(pytester: pytest.Pytester):
    """SIGTERM (a scheduler's timeout) stops the run like Ctrl-C: the JSON is still written, holds
    what was judged, and says the run is incomplete and why."""
    result, document = _run(pytester, INTERRUPTED)
    assert result.ret == 2, result.stdout.str()[-2000:]
    assert document is not None and document["complete"] is False
    assert "interrupted" in document["run"]["interrupted"]
    assert [r["outcome"] for r in document["results"]] == ["failed"]
    assert document["run"]["collected"] == 3 and document["run"]["recorded"] == 1


DEADLINE = '''
import time
import pytest
from mailaudit.verdict import Evaluation


@pytest.mark.requirement("SMTP-VRFY-EXPN")
def test_slow(target, verdict):
    """uses up the run's deadline"""
    time.sleep(1.5)
    verdict(Evaluation.passed_("ok"))


@pytest.mark.requirement("SMTP-CATCHALL")
def test_after_the_deadline(target, verdict):
    """comes after the deadline"""
    verdict(Evaluation.passed_("never judged"))
'''


def test_the_run_deadline_ends_the_run_with_errors_and_an_incomplete_json(pytester: pytest.Pytester):
    """Past the policy's run deadline nothing more is probed: the rest are errors naming the policy
    key, and the JSON says the run is incomplete."""
    policy = pytester.path / "policy.yaml"
    policy.write_text(f"extends: {POLICY}\nrun:\n  deadline_s: {{value: 1, source: \"self-test\"}}\n")
    result, document = _run(pytester, DEADLINE, f"--policy={policy}")
    outcomes = {_name(r["nodeid"]): r for r in document["results"]}
    assert outcomes["test_slow"]["outcome"] == "passed"
    late = outcomes["test_after_the_deadline"]
    assert late["outcome"] == "error" and "run.deadline_s" in late["message"], late
    assert document["complete"] is False and "deadline" in document["run"]["interrupted"]
    assert result.ret == 6
