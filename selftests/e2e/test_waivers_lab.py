"""A valid waiver turns a failure into *waived*; an expired one leaves the failure standing."""

import pytest

from selftests.e2e.lab import run_suite


def _waiver_file(tmp_path, expires: str):
    path = tmp_path / f"waivers-{expires}.yaml"
    path.write_text(f"- requirement: SMTP-VRFY-EXPN\n  server: mail.weak.test\n"
                    f"  reason: lab test of waivers\n  expires: {expires}\n")
    return path


@pytest.mark.lab
def test_waiver_in_force_and_expired(tmp_path):
    """In force: outcome waived, exit 0 for that test; expired: outcome failed."""
    valid = run_suite(["--waivers", str(_waiver_file(tmp_path, "2999-12-31")), "tests_smtp/test_vrfy_expn.py"],
                      via_lab_audit="weak")
    expired = run_suite(["--waivers", str(_waiver_file(tmp_path, "2020-01-01")), "tests_smtp/test_vrfy_expn.py"],
                        via_lab_audit="weak")
    assert valid.outcomes("SMTP-VRFY-EXPN") == {"": "waived"}, valid.stdout
    assert "lab test of waivers" in valid.verdicts("SMTP-VRFY-EXPN")[0]["message"]
    assert valid.returncode == 0 and "1 waived" in valid.stdout
    assert expired.outcomes("SMTP-VRFY-EXPN") == {"": "failed"}, expired.stdout
    assert expired.returncode == 1
    notice = "waiver for SMTP-VRFY-EXPN on mail.weak.test expired on 2020-01-01: the failure is back"
    assert expired.document["waivers"]["expired"] == [notice]
    assert f"mailaudit waiver expired: {notice}" in expired.stdout
    assert expired.verdicts("SMTP-VRFY-EXPN")[0]["lapsed_waiver"]["expires"] == "2020-01-01"


@pytest.mark.lab
def test_a_waiver_that_matches_nothing_is_listed(tmp_path):
    """A waiver in force that waived nothing in the run is named as unused (it may hide a typo)."""
    path = tmp_path / "unused.yaml"
    path.write_text("- requirement: SMTP-CATCHALL\n  server: mail.nosuch.test\n"
                    "  reason: old server\n  expires: 2999-12-31\n")
    run = run_suite(["--waivers", str(path), "tests_smtp/test_vrfy_expn.py"], via_lab_audit="weak")
    [message] = run.document["waivers"]["unused"]
    assert "SMTP-CATCHALL" in message and "matched no verdict" in message, message
    assert "mailaudit waiver unused:" in run.stdout
