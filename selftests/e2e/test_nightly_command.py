"""The README's nightly command works from any working folder, with absolute paths, night after
night: the suite's own root, ini and tests are used whatever pytest would have guessed."""

from __future__ import annotations

import re
import subprocess

import pytest

from selftests.e2e.lab import REPO
from selftests.e2e.test_smtp_lab import _lab_env

MAILAUDIT = REPO / ".venv" / "bin" / "mailaudit"


def _nightly(folder, out) -> subprocess.CompletedProcess:
    """The nightly command of the README, run from ``folder``, every path absolute and space-separated
    (the form pytest mistakes for test paths), selecting one requirement to keep the run short."""
    command = [str(MAILAUDIT), "--server", "mail.hardened.test", "--dns-server", "127.0.0.54",
               "--policy", str(REPO / "lab" / "dns" / "lab-policy.yaml"),
               "--ca-file", str(REPO / "lab" / "run" / "ca.pem"),
               "--html", str(out / "report.html"), "--results-json", str(out / "report.json"),
               "-k", "test_domain_has_mx_records_reaching_the_server", "-p", "no:cacheprovider"]
    return subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=300,
                          env={**_lab_env(), "PATH": "/usr/bin:/bin"})


@pytest.mark.lab
def test_nightly_command_twice_from_another_folder(tmp_path):
    """Run twice from an unrelated folder (the second time the report files exist): both runs
    collect exactly the suite's audit tests (never its self-tests) and judge the selected one."""
    folder, out = tmp_path / "cron", tmp_path / "out"
    folder.mkdir()
    out.mkdir()
    collected = []
    for night in (1, 2):
        run = _nightly(folder, out)
        output = run.stdout + run.stderr
        assert run.returncode == 0, f"night {night}: {output[-3000:]}"
        assert "selftests" not in output and "unrecognized arguments" not in output
        match = re.search(r"collected (\d+) items / (\d+) deselected / 1 selected", output)
        assert match, output[-2000:]
        collected.append(int(match.group(1)))
        assert f"rootdir: {REPO}" in output
        assert (out / "report.json").exists() and (out / "report.html").exists()
    assert collected[0] == collected[1] and 150 < collected[0] < 400
