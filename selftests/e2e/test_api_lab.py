"""End-to-end proof of the SmarterMail API requirements against the lab's simulators.

Every API-* and XCHK-* ID passes on the hardened lab server and fails on the weak one; a faulty API
(5xx, malformed JSON, a hung login) gives errors, never passes; wrong credentials give one clear
line per server; no output of any run holds the lab's API password or a token.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from selftests.e2e.lab import REPO, AuditRun, run_suite

HARDENED, WEAK = "mail.hardened.test", "mail.weak.test"
CREDENTIALS = REPO / "lab" / "credentials.env"
SMSIM_LOGS = (REPO / "lab" / "run" / "smsim" / "hardened.log", REPO / "lab" / "run" / "smsim" / "weak.log")
LAB_ARGS = ["--dns-server", "127.0.0.53", "--ca-file", "lab/run/ca.pem"]

# requirement -> what the weak server's failure message must name
WEAK_EVIDENCE: dict[str, tuple[str, ...]] = {
    "API-VERSION": ("9483", "CVE-2026-23760", "CVE-2026-24423"),
    "API-RELAY": ("Only Local Users",),
    "API-AUTH-MATCH": ("Require Auth Match is off",),
    "API-LOCAL-DELIVERY-AUTH": ("local deliveries is off",),
    "API-DOMAIN-SMTP-AUTH": ("Domain Defaults", "weak.test"),
    "API-CATCHALL": ("legacy.weak.test", "catchall"),
    "API-BOUNCES-SPF": ("auto-responders", "bounces"),
    "API-PASSWORD-POLICY": ("weak.test: minimum length 4",),
    "API-THROTTLING": ("weak.test: messages throttling is off",),
    "API-OUTBOUND-SPAM": ("outgoing messages is off",),
    "API-IDS-RULES": ("Internal Spammer: disabled", "no Password Brute Force rule"),
    "API-SYSTEM-EVENTS": ("Memory event is disabled", "Spool Count event notifies nobody"),
    "API-MAILING-LISTS": ("anyone may post to all@weak.test",),
    "API-SPF-SPOOL-FILTER": ("Spool Filtering is off",),
    "API-DMARC-CHECK": ("DMARC compliance check is off",),
    "API-TLS-PROTOCOLS": ("TLSv1.1 is allowed",),
    "API-ANTIVIRUS": ("no antivirus engine", "scan.exe"),
    "API-SMTP-AUTH-BYPASS": ("203.0.113.0/24", "198.51.100.7"),
    "API-SPOOL-BACKLOG": ("5512",),
    "XCHK-RELAY": ("ineffective setting", "Only Local Users"),
    "XCHK-CATCHALL": ("ineffective setting", "weak.test"),
    "XCHK-TLS": ("ineffective setting", "TLSv1.0"),
}
API_IDS = tuple(k for k in WEAK_EVIDENCE if k.startswith("API-"))
ALL_IDS = tuple(WEAK_EVIDENCE)


def lab_env() -> dict[str, str]:
    """The lab's credentials file as a mapping (KEY=VALUE lines)."""
    pairs = (line.split("=", 1) for line in CREDENTIALS.read_text().splitlines()
             if "=" in line and not line.lstrip().startswith("#"))
    return {key.strip(): value.strip().strip("'\"") for key, value in pairs}


def api_password() -> str:
    """The lab's API password (what must never appear in any output)."""
    return lab_env()["MAILAUDIT_API_PASSWORD"]


def env_with(**overrides: str) -> dict[str, str]:
    """The process environment plus the lab credentials plus overrides."""
    return {**os.environ, **lab_env(), **overrides}


# --- both ways ----------------------------------------------------------------------------------

@pytest.mark.lab
@pytest.mark.parametrize("requirement", ALL_IDS)
def test_api_requirement_passes_on_hardened(hardened_run: AuditRun, requirement: str):
    """Every verdict of the requirement on the hardened lab server is a pass."""
    verdicts = hardened_run.verdicts(requirement)
    assert verdicts, f"{requirement}: no verdict on the hardened server\n{hardened_run.stdout[-3000:]}"
    bad = [f"{r['outcome']}: {r['message']}" for r in verdicts if r["outcome"] != "passed"]
    assert not bad, f"{requirement} on hardened: {bad}"


@pytest.mark.lab
@pytest.mark.parametrize("requirement", ALL_IDS)
def test_api_requirement_fails_on_weak(weak_run: AuditRun, requirement: str):
    """Every verdict of the requirement on the weak lab server is a failure naming the weakness."""
    verdicts = weak_run.verdicts(requirement)
    assert verdicts, f"{requirement}: no verdict on the weak server\n{weak_run.stdout[-3000:]}"
    for record in verdicts:
        assert record["outcome"] == "failed", f"{requirement} on weak: {record['outcome']}: {record['message']}"
        for text in WEAK_EVIDENCE[requirement]:
            assert text in record["message"], f"{requirement}: {text!r} not in {record['message']!r}"


@pytest.mark.lab
def test_version_failure_is_critical(weak_run: AuditRun):
    """A build with known exploited vulnerabilities is reported with critical severity."""
    assert {r["severity"] for r in weak_run.verdicts("API-VERSION")} == {"critical"}


# --- a faulty API: errors, never passes ---------------------------------------------------------

def free_port(ip: str) -> int:
    """A free TCP port on a loopback address."""
    with socket.socket() as probe:
        probe.bind((ip, 0))
        return probe.getsockname()[1]


@contextmanager
def faulty_simulator(tmp_path: Path, fault: dict) -> Iterator[str]:
    """A hardened simulator of our own on 127.0.0.10:<free port> with a fault; yields the API URL."""
    port = free_port("127.0.0.10")
    fault_file = tmp_path / "fault.json"
    fault_file.write_text(json.dumps(fault))
    certs = REPO / "lab" / "run" / "certs"
    env = {**os.environ, "SMSIM_USER": lab_env()["MAILAUDIT_API_USER"], "SMSIM_PASSWORD": api_password()}
    process = subprocess.Popen(
        [str(REPO / ".venv/bin/python"), "-W", "ignore", str(REPO / "lab/smsim/smsim.py"),
         "--profile", str(REPO / "lab/smsim/profiles/hardened.yaml"), "--bind", "127.0.0.10",
         "--port", str(port), "--cert", str(certs / f"{HARDENED}.crt"), "--key", str(certs / f"{HARDENED}.key"),
         "--fault-file", str(fault_file), "--log", str(tmp_path / "smsim.log")],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.10", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"https://{HARDENED}:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def api_only_run(url: str, tmp_path: Path, *extra: str, env: dict[str, str] | None = None) -> AuditRun:
    """Audit only the API settings of the hardened lab server through the given URL."""
    policy = tmp_path / "fast.yaml"
    policy.write_text(f"extends: {REPO / 'policies' / 'baseline.yaml'}\nname: fast-api\napi:\n"
                      "  request_timeout_s: {value: 2, source: \"self-test: a hung API must not stall the run\"}\n")
    return run_suite(["--server", HARDENED, *LAB_ARGS, "--api-url", url, "--policy", str(policy),
                      *extra, "tests_api/test_api_settings.py"], env=env or env_with(), timeout=300)


@pytest.mark.lab
@pytest.mark.parametrize("fault, spared", [
    ({"mode": "error500", "match": "/api/v1/settings/*"}, {"API-VERSION"}),
    ({"mode": "malformed", "match": "/api/v1/settings/*"}, {"API-VERSION"}),
    ({"mode": "slow", "match": "/api/v1/auth/*", "delay": 6}, set()),
], ids=["http-500", "malformed-json", "hung-login"])
def test_faulty_api_gives_errors_not_passes(tmp_path: Path, fault: dict, spared: set[str]):
    """5xx after retries, malformed JSON and a hung login make the API requirements errors;
    only what the fault spares (the public version endpoint) may still be judged."""
    with faulty_simulator(tmp_path, fault) as url:
        run = api_only_run(url, tmp_path)
    records = {r["requirement"]: r for r in run.records}
    assert set(API_IDS) <= set(records), run.stdout[-3000:]
    for requirement in API_IDS:
        if requirement in spared:
            continue
        assert records[requirement]["outcome"] == "error", records[requirement]
    assert "Traceback" not in run.stdout + run.stderr


@pytest.mark.lab
def test_api_404_endpoint_is_skipped_with_manual_check(tmp_path: Path):
    """A build without an endpoint (404) skips its requirement with the manual-check place."""
    with faulty_simulator(tmp_path, {"mode": "notfound", "match": "/api/v1/settings/sysadmin/ids-rules"}) as url:
        run = api_only_run(url, tmp_path)
    record = next(r for r in run.records if r["requirement"] == "API-IDS-RULES")
    assert record["outcome"] == "skipped" and "Settings > Security > IDS Rules" in record["message"]
    assert all(r["outcome"] == "passed" for r in run.records if r["requirement"] != "API-IDS-RULES")


# --- wrong credentials: one clear line per server -----------------------------------------------

def log_sizes() -> list[int]:
    """Current sizes of the lab simulators' logs (to count what one run asked)."""
    return [p.stat().st_size if p.exists() else 0 for p in SMSIM_LOGS]


@pytest.mark.lab
def test_wrong_credentials_one_clear_line_per_server():
    """A wrong API password gives every API test of each server the same one-line error, after one
    login attempt per server (no lockout by repeated tries), and never shows the password."""
    wrong = "Wrong-Api-Pw-e2e-93kd"
    before = log_sizes()
    run = run_suite(["--server", HARDENED, "--server", WEAK, *LAB_ARGS, "--api-url", "https://{server}",
                     "tests_api/test_api_settings.py"], env=env_with(MAILAUDIT_API_PASSWORD=wrong), timeout=300)
    for server in (HARDENED, WEAK):
        records = [r for r in run.records if r["server"] == server and r["requirement"].startswith("API-")]
        assert len(records) == len(API_IDS), run.stdout[-3000:]
        messages = {r["message"] for r in records}
        assert {r["outcome"] for r in records} == {"error"}
        assert len(messages) == 1, messages
        line = messages.pop()
        assert "wrong user name or password" in line and "\n" not in line and server in line
    logins = [p.read_bytes()[size:].count(b"POST /api/v1/auth/authenticate-user")
              for p, size in zip(SMSIM_LOGS, before, strict=True)]
    assert logins == [1, 1], logins
    assert wrong not in run.stdout + run.stderr + (run.results_json.read_text() if run.results_json else "")


# --- redaction ----------------------------------------------------------------------------------

@pytest.mark.lab
def test_no_output_holds_the_api_password_or_a_token(hardened_run: AuditRun, weak_run: AuditRun):
    """The lab API password and bearer tokens appear in no report, results file, console output or
    simulator log of the lab audits."""
    password = api_password()
    outputs: dict[str, str] = {}
    for name, run in (("hardened", hardened_run), ("weak", weak_run)):
        outputs[f"{name} stdout"] = run.stdout
        outputs[f"{name} stderr"] = run.stderr
        for path in (run.html, run.results_json):
            if path is not None:
                outputs[str(path)] = path.read_text(errors="replace")
    for path in (*SMSIM_LOGS, *(REPO / "lab" / "run" / "smsim").glob("*.out")):
        if path.exists():
            outputs[str(path)] = path.read_text(errors="replace")
    for name, text in outputs.items():
        assert password not in text, f"API password in {name}"
        assert "eyJhbGciOi" not in text, f"a bearer token (JWT) in {name}"
        assert "Bearer ey" not in text, f"a bearer header in {name}"
