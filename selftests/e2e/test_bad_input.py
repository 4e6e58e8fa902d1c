"""Bad input stops the run before any probe with one clear line and a non-zero exit, no traceback."""

import time
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


# --- hostile option values and files (issue 13): each stops the run before any probe -----------

# An address the lab does not use: if validation ever let a case through, its probes are refused
# at once instead of waiting out timeouts.
UNUSED = ["--server", "127.0.0.99", "--domain", "example.test"]
WAIVER = "- requirement: {req}\n  reason: legacy appliance\n  expires: {expires}\n"


def _laughs_value() -> tuple[str, str]:
    """A flow list defining nine levels of aliases (9**9 strings once expanded), and the last anchor."""
    text, previous = "[&a [lol,lol,lol,lol,lol,lol,lol,lol,lol]", "a"
    for name in "bcdefghi":
        text += f", &{name} [" + ",".join([f"*{previous}"] * 9) + "]"
        previous = name
    return text + "]", previous


def _assert_exit_4(run, *expected: str) -> None:
    """One clear line, exit 4 (usage error), no traceback, no probe."""
    _assert_one_clear_line(run, *expected)
    assert run.returncode == 4, run.stdout + run.stderr


@pytest.mark.parametrize(("args", "expected"), [
    (["--server", "a" * 300 + ".example.com"], ("--server", "label of 300 characters")),
    (["--server", ".".join(["abcdefghi"] * 25) + ".examples.com"], ("--server", "characters long; at most 253")),
    ([*UNUSED, "--tls-ports", "²"], ("--tls-ports", "not a port number")),
    (["--server", "127.0.0.99", "--domain", ""], ("--domain ''", "empty value")),
    (["--server", "127.0.0.99", "--domain", "example.test\r\nDATA"], ("--domain", "control character CR")),
    ([*UNUSED, "--local-recipient", "postmaster@example.test>\r\nDATA\r\n"],
     ("--local-recipient", "control character CR")),
    ([*UNUSED, "--local-recipient", "postmaster@example.test\nRSET"], ("--local-recipient", "control character LF")),
    ([*UNUSED, "--api-url", "ftp://x"], ("--api-url 'ftp://x'", "scheme must be https://")),
])
def test_hostile_option_values_stop_the_run(args, expected):
    """Over-long labels and names, non-ASCII digits, empty values, CR/LF meant to smuggle SMTP
    commands, and a non-https API URL are each one line and exit 4, before any probe."""
    run = run_suite([*args, "tests_smtp"], timeout=120)
    _assert_exit_4(run, *expected)


@pytest.mark.parametrize(("entry", "expected"), [
    (WAIVER.format(req="TLS-NO-LEGACY-TLS", expires="2027-03-31 10:00:00"), "not a date and time"),
    (WAIVER.format(req="tls-no-legacy-tls", expires="2027-03-31"), "case-sensitive: did you mean TLS-NO-LEGACY-TLS"),
    (WAIVER.format(req="TLS-NO-SUCH-THING", expires="2027-03-31"), "unknown requirement 'TLS-NO-SUCH-THING'"),
])
def test_bad_waivers_stop_the_run_before_any_probe(tmp_path, entry, expected):
    """A waiver with a date and time, or naming a lower-case or unknown ID, is refused at start
    (not a crash after the probes, not accepted silently)."""
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text(entry)
    run = run_suite([*UNUSED, "--waivers", str(waivers), "tests_smtp"], timeout=120)
    _assert_exit_4(run, "--waivers", expected)


@pytest.mark.parametrize("kind", ["policy", "waivers"])
def test_billion_laughs_files_fail_at_once(tmp_path, kind):
    """A sub-kilobyte billion-laughs policy or waivers file is refused at its first anchor: one
    line, exit 4, in seconds (the old loader took 35 s and 3 GB, or 44 s and 5.8 GB)."""
    value, last = _laughs_value()
    if kind == "policy":
        text = (f"extends: {REPO / 'policies' / 'baseline.yaml'}\nsmtp:\n  harvest_attempts:\n"
                f"    value: 3\n    note: {value}\n    source: *{last}\n")
    else:
        text = f"- requirement: TLS-NO-LEGACY-TLS\n  expires: 2027-03-31\n  reason: {value}\n  server: *{last}\n"
    path = tmp_path / f"{kind}.yaml"
    path.write_text(text)
    assert len(text) < 1000
    start = time.monotonic()
    run = run_suite([*UNUSED, f"--{kind}", str(path), "tests_smtp"], timeout=60)
    assert time.monotonic() - start < 20
    _assert_exit_4(run, f"--{kind}" if kind == "waivers" else "policy", "anchors and aliases")
