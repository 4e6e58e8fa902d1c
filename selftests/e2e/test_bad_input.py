"""Bad input stops the run before any probe with one clear line and a non-zero exit, no traceback."""

from pathlib import Path

import pytest

from selftests.e2e.lab import REPO, run_suite

LAB_DNS = ["--dns-server", "127.0.0.53"]


def _assert_one_clear_line(run, *expected: str) -> None:
    output = run.stdout + run.stderr
    assert run.returncode not in (0, 1), output
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if line.startswith("ERROR: mailaudit:")]
    assert len(lines) == 1, output
    for text in expected:
        assert text in lines[0], lines[0]
    assert not run.records, "no probe may run on bad input"


@pytest.mark.lab
def test_unresolvable_server():
    """A server name without an address stops the run, naming the server and the resolver."""
    run = run_suite(["--server", "nosuchhost.hardened.test", *LAB_DNS, "tests_smtp"])
    _assert_one_clear_line(run, "nosuchhost.hardened.test", "unresolvable", "127.0.0.53")


@pytest.mark.parametrize("value", ["not-an-ip", "127.0.0.1:99999", "300.1.1.1"])
def test_bad_dns_server(value):
    """A malformed --dns-server is refused before any query."""
    run = run_suite(["--server", "192.0.2.1", "--domain", "example.test", "--dns-server", value, "tests_smtp"])
    _assert_one_clear_line(run, "--dns-server", value)


def test_missing_policy(tmp_path):
    """A policy file that does not exist is named."""
    missing = tmp_path / "nope.yaml"
    run = run_suite(["--server", "192.0.2.1", "--domain", "example.test", "--policy", str(missing), "tests_smtp"])
    _assert_one_clear_line(run, str(missing), "cannot read")


@pytest.mark.parametrize(("text", "expected"), [
    ("smtp: [unclosed\n", "malformed YAML at line"),
    ("extends: {base}\nsmtp:\n  harvest_attempts: {{value: lots, source: x}}\n", "smtp.harvest_attempts"),
])
def test_malformed_policy(tmp_path, text, expected):
    """Malformed YAML or a wrongly typed threshold is one line naming the problem."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(text.format(base=REPO / "policies" / "baseline.yaml"))
    run = run_suite(["--server", "192.0.2.1", "--domain", "example.test", "--policy", str(policy), "tests_smtp"])
    _assert_one_clear_line(run, expected)


def test_no_server_given():
    """Running the audit without --server says what is missing."""
    run = run_suite(["tests_smtp"])
    _assert_one_clear_line(run, "--server")


def test_unknown_requirement_id_in_a_test(tmp_path):
    """A test marked with an ID the catalog does not know stops the run at collection."""
    test_file = Path(tmp_path) / "test_unknown.py"
    test_file.write_text(
        "import pytest\n\n@pytest.mark.requirement('SMTP-NO-SUCH-THING')\n"
        "def test_x(target):\n    '''x'''\n")
    run = run_suite(["-p", "mailaudit.plugin", "--server", "192.0.2.1", "--domain", "example.test",
                     "-c", str(REPO / "pytest.ini"), str(test_file)])
    _assert_one_clear_line(run, "SMTP-NO-SUCH-THING")
