"""Hostile SMTP servers (issue 13): whatever a server answers, no SMTP requirement passes by mistake,
no secret leaks in any encoding, no DATA or BDAT is ever sent, and the audit ends in bounded time.

Each case runs the SMTP tests of the suite against one small scripted server on 127.0.3.x (see
``hostile_smtp.py``) with short policy timeouts. By default that server answers like a weak
server, so every requirement it lets the suite judge fails; each case adds one misbehaviour."""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from selftests.e2e.lab import AuditRun, run_suite
from selftests.hostile import hostile_smtp as hs
from selftests.hostile.common import (
    Listener,
    assert_no_pass,
    assert_no_secret,
    assert_no_traceback,
    short_policy,
    tcp_listener,
)
from selftests.tls_helpers import server_context, write_pki

# Answers every query REFUSED: the PTR lookup of SMTP-BANNER-HOSTNAME fails at once, without the lab.
RESOLVER_IP = "127.0.3.254"
SMTP_IDS = ("SMTP-OPEN-RELAY", "SMTP-CATCHALL", "SMTP-VRFY-EXPN", "SMTP-LOCAL-SPOOF", "SMTP-AUTH-TLS-ONLY",
            "SMTP-SUBMISSION-AUTH", "SMTP-AUTH-MATCH", "SMTP-BANNER-HOSTNAME", "SMTP-BANNER-DISCLOSURE")
INTRUSIVE_IDS = ("SMTP-HARVEST-DEFENSE", "SMTP-BRUTEFORCE-DEFENSE")
BOUND_S = 60  # generous: each run takes a few seconds (pytest start-up included)


@dataclass
class HostileRun:
    """One audit of a hostile server: the run, its wall time, and what the server received."""

    run: AuditRun
    seconds: float
    listener: Listener

    def outcomes(self, requirement: str) -> list[str]:
        """The outcomes of one requirement's records."""
        return [r["outcome"] for r in self.run.verdicts(requirement)]

    def messages(self) -> str:
        """Every record's message, one per line."""
        return "\n".join(r["message"] for r in self.run.records)


def audit(tmp_path: Path, ip: str, server: hs.HostileSmtp, *extra: str, domain: str = hs.HOST,
          env: dict[str, str] | None = None, **leaves: object) -> HostileRun:
    """Run tests_smtp against ``server`` on ``ip`` (a free port), every SMTP port of the policy
    pointing at it, with short timeouts (``leaves`` override them)."""
    with tcp_listener(ip, server.handle) as listener, hs.refusing_resolver(RESOLVER_IP) as resolver:
        smtp = {"ports": [listener.port], "submission_ports": [listener.port], "implicit_tls_ports": [],
                "inbound_port": listener.port, "auth_port": listener.port, "connect_timeout_s": 2,
                "command_timeout_s": 2, "server_deadline_s": 20, "harvest_attempts": 5,
                "bruteforce_attempts": 3, **leaves}
        policy = short_policy(tmp_path, smtp=smtp)
        started = time.monotonic()
        run = run_suite(["--server", ip, "--domain", domain, "--dns-server", resolver,
                         "--policy", str(policy), *extra, "tests_smtp"], env=env, timeout=BOUND_S * 2)
        seconds = time.monotonic() - started
    print(f"{ip}: {seconds:.1f} s, outcomes {sorted({r['outcome'] for r in run.records})}")
    return HostileRun(run, seconds, listener)


def assert_held(hostile: HostileRun, *requirements: str, bound_s: float = BOUND_S) -> None:
    """No pass among the requirements (each has a record), no traceback, no message transfer
    started, and the run ended within ``bound_s``."""
    assert_no_traceback(hostile.run)
    assert_no_pass(hostile.run, *requirements)
    assert not [r for r in hostile.run.records if r["outcome"] == "passed"]
    assert not hs.message_transfers(hostile.listener), hs.message_transfers(hostile.listener)
    assert hostile.seconds < bound_s, f"took {hostile.seconds:.0f} s"


def test_10000_line_greeting_is_an_error_not_a_cover(tmp_path):
    """A 10,000-line greeting is a protocol error: the hidden EHLO (naming the version) and VRFY
    (confirming a user) are never judged from its leftover lines; every requirement is an error."""
    hostile = audit(tmp_path, "127.0.3.1", hs.HostileSmtp(hs.behind_the_flood, greeting=hs.FLOOD_GREETING))
    assert_held(hostile, *SMTP_IDS)
    assert set(hostile.outcomes("SMTP-VRFY-EXPN")) == {"error"}
    assert set(hostile.outcomes("SMTP-BANNER-DISCLOSURE")) == {"error"}
    assert "greeting longer than 100 lines" in hostile.messages()


def test_reply_code_999_to_vrfy_is_an_error(tmp_path):
    """``999`` (outside 2xx-5xx) to VRFY is no answer: SMTP-VRFY-EXPN is an error, never a pass."""
    hostile = audit(tmp_path, "127.0.3.2", hs.HostileSmtp(hs.vrfy_999))
    assert_held(hostile, *SMTP_IDS)
    [record] = hostile.run.verdicts("SMTP-VRFY-EXPN")
    assert record["outcome"] == "error" and "not an SMTP reply line" in record["message"], record


def test_mixed_code_rcpt_replies_give_no_relay_pass(tmp_path):
    """``250-... / 554 ...`` to every RCPT: each relay variant is an error naming the mixed codes,
    none is judged by the last line."""
    hostile = audit(tmp_path, "127.0.3.3", hs.HostileSmtp(hs.mixed_rcpt))
    assert_held(hostile, *SMTP_IDS)
    relay = hostile.run.verdicts("SMTP-OPEN-RELAY")
    plain = [r for r in relay if "plain" in r["variant"]]
    assert len(plain) == 17 and {r["outcome"] for r in plain} == {"error"}, relay
    assert all("mixed reply codes 250 and 554" in r["message"] for r in plain)


def test_a_line_without_crlf_forever_is_a_bounded_error(tmp_path):
    """A greeting line that never ends is an error after a bounded number of bytes, for every requirement."""
    hostile = audit(tmp_path, "127.0.3.4", hs.HostileSmtp(greeting=hs.endless_line))
    assert_held(hostile, *SMTP_IDS)
    assert "no line end within 4096 bytes" in hostile.messages()


def test_a_tarpit_ends_at_the_smtp_deadline(tmp_path):
    """A server answering every command after 1 s (under the 2 s command timeout) is stopped by the
    per-server SMTP deadline (4 s here): BudgetExceeded errors naming smtp.server_deadline_s, no pass,
    and the whole audit ends in seconds, not in hours."""
    hostile = audit(tmp_path, "127.0.3.5", hs.HostileSmtp(delay_s=1.0), "--intrusive", server_deadline_s=4)
    assert_held(hostile, *SMTP_IDS, *INTRUSIVE_IDS, bound_s=30)
    errors = [r for r in hostile.run.records if r["outcome"] == "error"]
    assert any("smtp.server_deadline_s" in r["message"] for r in errors), hostile.messages()


def test_dropping_the_connection_on_rcpt_cannot_pass_harvest_defense(tmp_path):
    """A server that hangs up on every RCPT (the control recipient's too) is no harvest defence:
    SMTP-HARVEST-DEFENSE is inconclusive, and the other RCPT-based requirements are errors."""
    hostile = audit(tmp_path, "127.0.3.6", hs.HostileSmtp(hs.drop_on_rcpt), "--intrusive")
    assert_held(hostile, *SMTP_IDS, *INTRUSIVE_IDS)
    [record] = hostile.run.verdicts("SMTP-HARVEST-DEFENSE")
    assert record["outcome"] == "inconclusive" and "control RCPT TO:<postmaster@hostile.test>" in record["message"]


def test_refusals_coded_250_are_acceptances(tmp_path):
    """``250 ... refused`` to unknown recipients, then 421: the 250s are acceptances, so the cut-off
    proves no harvest defence (and the catch-all check fails)."""
    hostile = audit(tmp_path, "127.0.3.7", hs.HostileSmtp(hs.refused_with_250), "--intrusive")
    assert_held(hostile, *SMTP_IDS, *INTRUSIVE_IDS)
    [harvest] = hostile.run.verdicts("SMTP-HARVEST-DEFENSE")
    assert harvest["outcome"] == "inconclusive" and "acceptance" in harvest["message"], harvest
    assert hostile.outcomes("SMTP-CATCHALL") == ["failed"]


def test_greylisting_everywhere_makes_harvest_inconclusive(tmp_path):
    """4xx to every unknown recipient (the control accepted) decides nothing: inconclusive, not failed."""
    hostile = audit(tmp_path, "127.0.3.8", hs.HostileSmtp(hs.greylisting), "--intrusive")
    assert_held(hostile, *SMTP_IDS, *INTRUSIVE_IDS)
    [harvest] = hostile.run.verdicts("SMTP-HARVEST-DEFENSE")
    assert harvest["outcome"] == "inconclusive" and "4xx" in harvest["message"], harvest


def test_an_echoed_auth_argument_leaks_no_secret(tmp_path):
    """A server answering ``535 <the AUTH PLAIN argument>`` after STARTTLS: the test password appears
    in no output (terminal, JSON, HTML, JUnit, evidence files) in any encoding, the base64 of the AUTH
    argument and its prefixes included."""
    pki = write_pki(tmp_path / "pki", [hs.HOST], self_signed=True)
    user, password = "alice@hostile.test", "Hostile-" + secrets.token_urlsafe(18)
    env = {**os.environ, "MAILAUDIT_SMTP_PASSWORD": password}
    server = hs.HostileSmtp(hs.auth_echo, tls=server_context(pki))
    hostile = audit(tmp_path, "127.0.3.9", server, "--intrusive", "--smtp-user", user, env=env)
    assert_held(hostile, *SMTP_IDS, *INTRUSIVE_IDS)
    [record] = hostile.run.verdicts("SMTP-AUTH-MATCH")
    assert record["outcome"] == "error" and f"AUTH as {user} refused (535" in record["message"], record
    assert_no_secret(hostile.run, password, user=user)


@pytest.mark.parametrize("option", [
    ("--domain", "hostile.test\r\nDATA"),
    ("--local-recipient", "postmaster@hostile.test>\r\nDATA\r\nNOOP injected"),
])
def test_crlf_in_options_never_reaches_the_server(tmp_path, option):
    """CR/LF inside --domain or --local-recipient never splits into a second command: no DATA, no
    injected line arrives (the option is refused at option time, or the client refuses the line)."""
    name, value = option
    extra = ("--local-recipient", value) if name == "--local-recipient" else ()
    domain = value if name == "--domain" else hs.HOST
    hostile = audit(tmp_path, "127.0.3.10", hs.HostileSmtp(), "--intrusive", *extra, domain=domain)
    assert_no_traceback(hostile.run)
    assert not [r for r in hostile.run.records if r["outcome"] == "passed"]
    received = hs.received_commands(hostile.listener)
    assert not hs.message_transfers(hostile.listener), received
    assert not [line for line in received if line.startswith("NOOP") or line.strip() in ("DATA", ">")], received
    assert hostile.seconds < BOUND_S


# -- issue 14: pipelined groups (RFC 2920) answered wrongly -------------------------------------------------

PIPELINED_IDS = ("SMTP-OPEN-RELAY", "SMTP-CATCHALL", "SMTP-LOCAL-SPOOF", "SMTP-SUBMISSION-AUTH")


def test_a_pipelining_server_answering_fewer_replies_passes_nothing(tmp_path):
    """A server that advertises PIPELINING but answers only the first command of each group (it
    flushes the rest, RFC 2920 §1): the missing replies are timeouts, so every requirement judged from
    a pipelined group is an error naming the unanswered command, never a verdict from replies out of
    step; the audit stays bounded."""
    hostile = audit(tmp_path, "127.0.3.11", hs.HostileSmtp(burst=hs.answer_first_only), command_timeout_s=1)
    assert_held(hostile, *SMTP_IDS)
    plain = [r for r in hostile.run.verdicts("SMTP-OPEN-RELAY") if "plain" in r["variant"]]
    assert len(plain) == 17 and {r["outcome"] for r in plain} == {"error"}, plain
    assert all("pipelined) within 1 s" in r["message"] for r in plain), plain[0]
    for requirement in PIPELINED_IDS[1:]:
        assert set(hostile.outcomes(requirement)) == {"error"}, hostile.run.verdicts(requirement)


def test_a_pipelining_server_with_stray_replies_passes_nothing(tmp_path):
    """A relaying server that, in a pipelined group, sends a stray ``554 ... denied`` before each RCPT's
    own ``250``: read out of step, every RCPT would look refused and pass. The reply left over after
    the group shows the replies are out of step: those requirements are errors, none passes."""
    hostile = audit(tmp_path, "127.0.3.12", hs.HostileSmtp(burst=hs.stray_refusal))
    assert_held(hostile, *SMTP_IDS)
    plain = [r for r in hostile.run.verdicts("SMTP-OPEN-RELAY") if "plain" in r["variant"]]
    assert len(plain) == 17 and {r["outcome"] for r in plain} == {"error"}, plain
    assert all("out of step" in r["message"] for r in plain), plain[0]
    for requirement in PIPELINED_IDS[1:]:
        records = hostile.run.verdicts(requirement)
        assert {r["outcome"] for r in records} == {"error"} and all("out of step" in r["message"] for r in records)
