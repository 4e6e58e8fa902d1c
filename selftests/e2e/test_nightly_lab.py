"""Nightly use on the lab: an inventory of both lab servers, a history, the changes since the last
night when a lab setting is flipped (and back), exit codes for alerting, quiet output for cron, and
two shards merged into the same records as one run."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mailaudit.schema import validate_document
from selftests.e2e.lab import REPO, AuditRun, run_suite
from selftests.e2e.test_smtp_lab import _lab_env

HARDENED_POSTFIX = REPO / "lab" / "run" / "postfix" / "hardened" / "etc"
SUBSET = ["tests_smtp/test_vrfy_expn.py", "tests_dns/test_mx_ptr.py"]
INVENTORY = """
defaults:
  dkim_selectors: [lab]
  tags: [lab]
servers:
  mail.hardened.test:
    smtp_user: alice@hardened.test
  mail.weak.test:
    smtp_user: alice@weak.test
    tags: [weak]
"""


def _inventory(folder: Path) -> Path:
    path = folder / "fleet.yaml"
    path.write_text(INVENTORY, encoding="utf-8")
    return path


def _night(folder: Path, *extra: str) -> AuditRun:
    """One nightly run over the inventory (the lab resolver, CA and policy), with -q as from cron."""
    args = ["--inventory", str(_inventory(folder)), "--dns-server", "127.0.0.54", "--ca-file",
            str(REPO / "lab" / "run" / "ca.pem"), "--policy", str(REPO / "lab" / "dns" / "lab-policy.yaml"),
            *extra, *SUBSET]
    run = run_suite(args, env={**_lab_env(), "PATH": "/usr/bin:/bin"}, timeout=300)
    assert run.document, run.stdout + run.stderr
    assert validate_document(run.document) == []
    return run


def _postconf(setting: str) -> None:
    subprocess.run(["postconf", "-c", str(HARDENED_POSTFIX), "-e", setting], check=True, timeout=30)
    subprocess.run(["postfix", "-c", str(HARDENED_POSTFIX), "reload"], check=True, timeout=30,
                   capture_output=True)


@contextmanager
def _vrfy_enabled_on_hardened() -> Iterator[None]:
    """Flip the hardened Postfix to answer VRFY (a weakness), and always back."""
    _postconf("disable_vrfy_command=no")
    try:
        yield
    finally:
        _postconf("disable_vrfy_command=yes")


def _changes(run: AuditRun) -> dict[tuple[str, str], str]:
    """What changed since the baseline (what still fails, unchanged, is left out)."""
    return {(i["server"], i["requirement"]): i["change"] for i in run.document["changes"]["items"]
            if i["change"] != "still failing"}


@pytest.mark.lab
def test_nightly_runs_report_what_changed(tmp_path):
    """Night 1 is the baseline; night 2 (VRFY flipped on in the hardened lab) reports one new failure
    and exits 1 under --fail-on new although the weak server still fails; night 3 (flipped back)
    reports it fixed and exits 0. Each -q run prints a few lines; the history keeps the runs and
    draws the trend page."""
    history = tmp_path / "history"
    first = _night(tmp_path, "--history", str(history), "--fail-on", "new")
    assert "changes" not in first.document, "no baseline on the first night"
    assert first.returncode == 1 and "no baseline yet" in first.stdout  # every finding counts
    with _vrfy_enabled_on_hardened():
        second = _night(tmp_path, "--history", str(history), "--fail-on", "new")
    third = _night(tmp_path, "--history", str(history), "--fail-on", "new")

    assert _changes(second) == {("mail.hardened.test", "SMTP-VRFY-EXPN"): "new failure"}, second.document["changes"]
    assert second.returncode == 1
    assert "1 new failure" in second.stdout and "mail.hardened.test" in second.stdout
    assert _changes(third) == {("mail.hardened.test", "SMTP-VRFY-EXPN"): "fixed"}
    assert third.returncode == 0, third.stdout
    for run in (second, third):
        lines = [line for line in run.stdout.splitlines() if line.strip()]
        assert len(lines) <= 12, run.stdout
    assert len(list((history / "runs").glob("*.json"))) == 3
    page = (history / "index.html").read_text(encoding="utf-8")
    assert "mail.hardened.test" in page and "<svg" in page


def _keys(run_or_document) -> set[tuple[str, str, str, str]]:
    records = run_or_document.records if isinstance(run_or_document, AuditRun) else run_or_document["results"]
    return {(r["server"], r["requirement"], r["variant"], r["outcome"]) for r in records}


@pytest.mark.lab
def test_two_shards_merged_give_the_records_of_one_run(tmp_path):
    """--shard 1/2 and 2/2 split the inventory's two servers; python -m mailaudit.merge builds one
    results file (and its auditor's report) with the same records as one run over both."""
    whole = _night(tmp_path)
    shards = [_night(tmp_path, "--shard", f"{k}/2") for k in (1, 2)]
    assert {len(s.document["run"]["targets"]) for s in shards} == {1}
    merged = tmp_path / "merged.json"
    proc = subprocess.run([sys.executable, "-m", "mailaudit.merge", *(str(s.results_json) for s in shards),
                           "-o", str(merged)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    document = json.loads(merged.read_text())
    assert validate_document(document) == []
    assert _keys(document) == _keys(whole)
    assert document["complete"] is True
    assert (tmp_path / "merged-audit.html").exists()


@pytest.mark.lab
def test_a_shard_without_servers_is_not_a_failure(tmp_path):
    """--shard 3/3 of two servers audits nothing, says so in one line and exits 0."""
    run = _night(tmp_path, "--shard", "3/3")
    assert run.returncode == 0 and "shard 3/3 has no servers" in run.stdout
    assert run.records == []


@pytest.mark.lab
def test_each_server_of_the_inventory_has_its_own_tls_ports(tmp_path):
    """The inventory's tls_ports apply per server: each server is scanned on its own ports only, and
    a port given for another server is skipped with that reason, never probed."""
    inventory = tmp_path / "ports.yaml"
    inventory.write_text("servers:\n  mail.hardened.test:\n    tls_ports: [25]\n"
                         "  mail.weak.test:\n    tls_ports: [465]\n", encoding="utf-8")
    args = ["--inventory", str(inventory), "--dns-server", "127.0.0.54", "--ca-file", str(REPO / "lab/run/ca.pem"),
            "--policy", str(REPO / "lab/dns/lab-policy.yaml"), "tests_tls/test_protocols.py", "-k", "ssl2_and_ssl3"]
    run = run_suite(args, env={**_lab_env(), "PATH": "/usr/bin:/bin"}, timeout=300)
    outcomes = {(r["server"], r["variant"]): r["outcome"] for r in run.verdicts("TLS-NO-SSL")}
    assert outcomes == {("mail.hardened.test", "25"): "passed", ("mail.hardened.test", "465"): "skipped",
                        ("mail.weak.test", "465"): "passed", ("mail.weak.test", "25"): "skipped"}, outcomes
    skipped = [r for r in run.verdicts("TLS-NO-SSL") if r["outcome"] == "skipped"]
    assert all("audited on other servers" in r["message"] for r in skipped)
