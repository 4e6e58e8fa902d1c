"""End-to-end proof of the SMTP requirements: every SMTP-* ID passes on the hardened lab server and
fails on the weak one with the evidence named; misbehaving servers give one clear error; the
reports hold no credential and escape server text; the audits deliver nothing."""

from __future__ import annotations

import base64
import html
import json
import os
import re
import secrets
import socketserver
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from selftests.e2e.lab import REPO, AuditRun, lab_audit, run_suite

WEAK = "mail.weak.test"
CREDENTIALS = REPO / "lab" / "credentials.env"
MESSAGES = REPO / "lab" / "messages"

# requirement -> what the weak server's failure message must name (the evidence)
WEAK_EVIDENCE: dict[str, tuple[str, ...]] = {
    "SMTP-CATCHALL": ("RCPT TO:<mailaudit-catchall-", "250", "catch-all"),
    "SMTP-VRFY-EXPN": ("VRFY", "@weak.test", "250", "confirms the user"),
    "SMTP-LOCAL-SPOOF": ("MAIL FROM:<postmaster@weak.test>", "RCPT TO:<postmaster@weak.test>", "250"),
    "SMTP-AUTH-TLS-ONLY": ("EHLO before STARTTLS", "offers AUTH", "AUTH PLAIN with a bogus credential", "535"),
    "SMTP-SUBMISSION-AUTH": ("without AUTH", "RCPT TO:<postmaster@weak.test>", "250"),
    "SMTP-AUTH-MATCH": ("logged in as alice@weak.test", "MAIL FROM another", "250"),
    "SMTP-HARVEST-DEFENSE": ("unknown recipients answered in one session", "without 421 or disconnect"),
    "SMTP-BRUTEFORCE-DEFENSE": ("wrong passwords for alice@weak.test", "535", "never blocked"),
    "SMTP-BANNER-HOSTNAME": ("mail.weak.test", "dsl-20.pool.weak.test"),
    "SMTP-BANNER-DISCLOSURE": ("the greeting", "product 'Postfix'", "version '"),
}
SMTP_IDS = tuple(WEAK_EVIDENCE)


def _lab_env() -> dict[str, str]:
    """The lab's credentials file as a mapping (KEY=VALUE lines)."""
    pairs = (line.split("=", 1) for line in CREDENTIALS.read_text().splitlines()
             if "=" in line and not line.lstrip().startswith("#"))
    return {key.strip(): value.strip().strip("'\"") for key, value in pairs}


# -- every SMTP-* ID both ways --------------------------------------------------------------------------

@pytest.mark.lab
@pytest.mark.parametrize("requirement", SMTP_IDS)
def test_smtp_requirement_passes_on_hardened(hardened_run: AuditRun, requirement: str):
    """Every verdict of the requirement on the hardened lab server is a pass."""
    outcomes = hardened_run.outcomes(requirement)
    assert outcomes, f"{requirement}: no verdict on the hardened server\n{hardened_run.stdout[-3000:]}"
    bad = {r["variant"] or "-": f"{r['outcome']}: {r['message']}" for r in hardened_run.verdicts(requirement)
           if r["outcome"] != "passed"}
    assert not bad, f"{requirement} on hardened: {bad}"


@pytest.mark.lab
@pytest.mark.parametrize("requirement", SMTP_IDS)
def test_smtp_requirement_fails_on_weak_naming_the_evidence(weak_run: AuditRun, requirement: str):
    """Every verdict of the requirement on the weak lab server fails, and the message names the evidence."""
    verdicts = weak_run.verdicts(requirement)
    assert verdicts, f"{requirement}: no verdict on the weak server\n{weak_run.stdout[-3000:]}"
    for record in verdicts:
        assert record["outcome"] == "failed", f"{requirement} {record['variant']}: {record['outcome']}: " \
                                              f"{record['message']}"
        for text in WEAK_EVIDENCE[requirement]:
            assert text in record["message"], f"{requirement} {record['variant']}: {text!r} not in " \
                                              f"{record['message']!r}"


# -- the relay requirement on every channel --------------------------------------------------------------

CHANNELS = ("25-plain", "25-starttls", "587-plain", "587-starttls", "465-tls")


def _relay_variants() -> set[str]:
    from mailaudit.probes.relay import VARIANT_IDS

    return {f"{channel}-{vid}" for channel in CHANNELS for vid in VARIANT_IDS}


@pytest.mark.lab
def test_relay_refused_on_every_channel_of_hardened(hardened_run: AuditRun):
    """Every relay variant on every channel (25 plain and STARTTLS, 587 plain and STARTTLS, 465) is refused."""
    outcomes = hardened_run.outcomes("SMTP-OPEN-RELAY")
    assert set(outcomes) == _relay_variants()
    assert {v: o for v, o in outcomes.items() if o != "passed"} == {}


@pytest.mark.lab
def test_relay_accepted_by_weak_fails_naming_each_variant(weak_run: AuditRun):
    """The weak server relays every form on every channel (lab/postfix/weak/main.cf): each verdict fails,
    and its message names the variant and the accepted RCPT."""
    records = {r["variant"]: r for r in weak_run.verdicts("SMTP-OPEN-RELAY")}
    assert set(records) == _relay_variants()
    for variant, record in records.items():
        vid = variant.split("-", 2)[2]
        assert record["outcome"] == "failed", record
        assert f"relay variant {vid} " in record["message"] and "RCPT accepted" in record["message"], record


def _evidence_text(run: AuditRun, record: dict) -> str:
    """The evidence a record names, read from the run's evidence files (or the inline text)."""
    texts = []
    for ref in record.get("evidence") or ():
        path = run.out_dir / ref["file"] if run.out_dir and ref.get("file") else None
        texts.append(path.read_text(encoding="utf-8") if path and path.exists() else ref.get("text", ""))
    return "\n".join(texts)


@pytest.mark.lab
def test_envelopes_are_pipelined_on_the_lab(hardened_run: AuditRun, weak_run: AuditRun):
    """Both lab servers advertise PIPELINING (RFC 2920): every relay variant and the catch-all were
    sent in a pipelined group, each command shown with its own reply, and no DATA was ever written."""
    for run in (hardened_run, weak_run):
        records = run.verdicts("SMTP-OPEN-RELAY") + run.verdicts("SMTP-CATCHALL")
        assert len(records) == 86, len(records)
        for record in records:
            text = _evidence_text(run, record)
            assert "pipelined (RFC 2920)" in text and "\nC: MAIL FROM:" in text, (record["variant"], text[-500:])
            assert "C: DATA" not in text and "C: BDAT" not in text


# -- test credentials: missing is a skip, wrong is one clear error ------------------------------------------

def _auth_match_run(password: str | None) -> AuditRun:
    """SMTP-AUTH-MATCH alone against the weak server (no AUTH rate limit there) with the given password."""
    env = {k: v for k, v in os.environ.items() if k != "MAILAUDIT_SMTP_PASSWORD"}
    if password is not None:
        env["MAILAUDIT_SMTP_PASSWORD"] = password
    return run_suite(["--server", WEAK, "--dns-server", "127.0.0.53", "--smtp-user", "alice@weak.test",
                      "tests_smtp/test_auth_match.py"], env=env, timeout=120)


@pytest.mark.lab
def test_auth_match_without_password_is_skipped_with_the_reason():
    """Without MAILAUDIT_SMTP_PASSWORD the requirement is skipped, and the reason names what is missing."""
    [record] = _auth_match_run(None).verdicts("SMTP-AUTH-MATCH")
    assert record["outcome"] == "skipped" and "MAILAUDIT_SMTP_PASSWORD not given" in record["message"]


@pytest.mark.lab
def test_auth_match_with_wrong_password_is_one_clear_error():
    """A wrong test password is one error naming the login and the options to check, and never shows up."""
    wrong = "wrong-" + secrets.token_urlsafe(12)
    run = _auth_match_run(wrong)
    [record] = run.verdicts("SMTP-AUTH-MATCH")
    assert record["outcome"] == "error", record
    assert "AUTH as alice@weak.test refused (535" in record["message"], record
    assert "check --smtp-user and MAILAUDIT_SMTP_PASSWORD" in record["message"] and "\n" not in record["message"]
    assert "Traceback" not in run.stdout + run.stderr
    for path in _report_files(run):
        text = path.read_text(encoding="utf-8")
        assert wrong not in text and all(wrong not in t for t in _embedded_texts(text))


# -- do no harm: password guessing without a test account --------------------------------------------------

@pytest.mark.lab
def test_bruteforce_without_smtp_user_guesses_only_for_a_random_nonexistent_user():
    """Without --smtp-user, SMTP-BRUTEFORCE-DEFENSE aims its wrong passwords at a random nonexistent
    local part of the domain, never at postmaster@ or another real mailbox, and the message says so.
    (Against the weak server, which has no AUTH rate limit: the verdict is still a failure.)"""
    env = {k: v for k, v in os.environ.items() if k != "MAILAUDIT_SMTP_PASSWORD"}
    run = run_suite(["--server", WEAK, "--dns-server", "127.0.0.53", "--intrusive",
                     "tests_smtp/test_bruteforce_defense.py"], env=env, timeout=120)
    [record] = run.verdicts("SMTP-BRUTEFORCE-DEFENSE")
    assert record["outcome"] == "failed", record
    assert "wrong passwords for mailaudit-bruteforce-" in record["message"], record
    assert "no --smtp-user given: a random nonexistent user, never a real mailbox" in record["message"]
    assert "postmaster@" not in record["message"] and "alice@" not in record["message"]


# -- misbehaving servers: one clear error within the timeout -------------------------------------------

class _Silent(socketserver.BaseRequestHandler):
    """Accepts and never says anything until the client leaves (at most 60 s)."""

    def handle(self) -> None:
        self.request.settimeout(60)
        try:
            while self.request.recv(1024):
                pass
        except OSError:
            pass


class _Hangup(socketserver.BaseRequestHandler):
    """Accepts and closes at once."""

    def handle(self) -> None:
        self.request.close()


@contextmanager
def _listener(ip: str, handler: type[socketserver.BaseRequestHandler]) -> Iterator[int]:
    server = socketserver.ThreadingTCPServer((ip, 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _short_policy(tmp_path: Path, port: int) -> Path:
    policy = tmp_path / "short.yaml"
    cite = 'source: "self-test: a misbehaving listener on one high port"'
    policy.write_text(
        f"extends: {REPO / 'policies' / 'baseline.yaml'}\nsmtp:\n"
        f"  ports: {{value: [{port}], {cite}}}\n  submission_ports: {{value: [], {cite}}}\n"
        f"  implicit_tls_ports: {{value: [], {cite}}}\n  inbound_port: {{value: {port}, {cite}}}\n"
        f"  auth_port: {{value: {port}, {cite}}}\n  connect_timeout_s: {{value: 2, {cite}}}\n"
        f"  command_timeout_s: {{value: 2, {cite}}}\n")
    return policy


@pytest.mark.parametrize(("handler", "ip", "expected"), [
    (_Silent, "127.0.0.81", "no greeting within 2 s"),
    (_Hangup, "127.0.0.82", "server closed the connection before greeting"),
])
def test_misbehaving_server_gives_one_clear_error(tmp_path, handler, ip, expected):
    """A server that accepts TCP and never greets, or closes at once, is an error with one clear line."""
    with _listener(ip, handler) as port:
        started = time.monotonic()
        run = run_suite(["--server", ip, "--domain", "example.test", "--dns-server", "127.0.0.53",
                         "--policy", str(_short_policy(tmp_path, port)), "--intrusive", "tests_smtp"], timeout=120)
        elapsed = time.monotonic() - started
    output = run.stdout + run.stderr
    assert "Traceback" not in output, output
    assert elapsed < 60, f"took {elapsed:.0f} s"
    smtp = [r for r in run.records if r["requirement"].startswith("SMTP-")]
    assert smtp, output
    assert {r["outcome"] for r in smtp} <= {"error", "skipped"}, smtp
    errors = [r for r in smtp if r["outcome"] == "error"]
    assert {r["requirement"] for r in errors} >= set(SMTP_IDS) - {"SMTP-AUTH-MATCH", "SMTP-SUBMISSION-AUTH"}
    for record in errors:
        assert "\n" not in record["message"], record
        assert f"{ip}:{port}: {expected}" in record["message"], record


# -- secrets, escaping, nothing delivered ------------------------------------------------------------------

def _embedded_texts(page: str) -> list[str]:
    """The text attachments pytest-html embeds as base64 data: URIs (evidence extras)."""
    return [base64.b64decode(m.group(1)).decode("utf-8", "replace")
            for m in re.finditer(r"data:text/plain;charset=utf-8;base64,([A-Za-z0-9+/=]+)", page)]


def _report_files(*runs: AuditRun) -> list[Path]:
    return [path for run in runs for path in (run.html, run.results_json) if path is not None]


@pytest.mark.lab
def test_reports_hold_no_smtp_password(hardened_run: AuditRun, weak_run: AuditRun):
    """No report or results file holds the lab SMTP password, in clear or base64 (AUTH PLAIN/LOGIN) form."""
    env = _lab_env()
    password, user = env["MAILAUDIT_SMTP_PASSWORD"], env.get("MAILAUDIT_SMTP_USER", "alice")
    forms = {password, base64.b64encode(password.encode()).decode()}
    for server in ("hardened.test", "weak.test"):
        login = user if "@" in user else f"{user}@{server}"
        forms.add(base64.b64encode(f"\0{login}\0{password}".encode()).decode())
        forms.add(base64.b64encode(f"\0alice@{server}\0{password}".encode()).decode())
    files = _report_files(hardened_run, weak_run)
    assert len(files) == 4
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        for readable in (text, *_embedded_texts(text)):
            for form in forms:
                assert form not in readable, f"{path} holds a form of the SMTP password"
    for run in (hardened_run, weak_run):
        assert all(form not in run.stdout + run.stderr for form in forms)
    assert "AUTH PLAIN [redacted]" in weak_run.html.read_text(encoding="utf-8")


def _strings(value: object) -> Iterator[str]:
    """Every string inside a decoded JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


@pytest.mark.lab
def test_weak_banner_is_escaped_in_the_html_report(weak_run: AuditRun):
    """The weak server's banner text <b>lab</b> appears in the HTML report escaped, never as markup.

    pytest-html keeps the rows and logs as HTML fragments in a JSON attribute and inserts them into
    the page: every fragment must hold the banner escaped."""
    page = weak_run.html.read_text(encoding="utf-8")
    assert "<b>lab</b>" not in page
    blob = re.search(r'data-jsonblob="([^"]*)"', page)
    assert blob, "no pytest-html data in the report"
    fragments = list(_strings(json.loads(html.unescape(blob.group(1)))))
    assert not [f for f in fragments if "<b>lab</b>" in f]
    assert any("&lt;b&gt;lab&lt;/b&gt;" in f for f in fragments), "the weak banner is not in the report"


def _message_counts() -> dict[str, dict[str, int]]:
    """lab/messages: per lab server, ``queued`` and ``delivered`` message counts."""
    out = subprocess.run([str(MESSAGES)], capture_output=True, text=True, timeout=60, check=True).stdout
    counts: dict[str, dict[str, int]] = {}
    for line in out.splitlines():
        server, _, rest = line.partition(" ")
        counts[server] = {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", rest)}
    return counts


@pytest.mark.lab
def test_audits_queue_and_deliver_nothing(request: pytest.FixtureRequest):
    """The audits send no message: lab/messages counts the same before and after an SMTP audit of each
    lab server, and after the full lab audits (when they had not run yet)."""
    before = _message_counts()
    assert set(before) == {"hardened", "weak"} and all("queued" in c and "delivered" in c for c in before.values())
    for profile in ("hardened", "weak"):
        run = lab_audit(profile, ("tests_smtp",))
        assert [r for r in run.records if r["requirement"].startswith("SMTP-")], run.stdout[-2000:]
    assert _message_counts() == before
    for name in ("hardened_run", "weak_run"):
        assert request.getfixturevalue(name).records
    assert _message_counts() == before
