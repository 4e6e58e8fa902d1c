"""Hostile SmarterMail APIs through the real suite (issue 13): a server on 127.0.5.x that echoes the
bearer token in a 403, returns the API password as setting values, trickles its answer, sends
100 MB, nests 100,000 arrays, lists 100,000 domains, is slow on every read, or speaks plain HTTP
on the TLS port. Each run: no pass it did not earn, no secret in any output (all encodings), no
traceback, bounded wall time and peak memory, and the one line that names the cause."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from selftests.e2e.lab import AuditRun
from selftests.hostile.common import (
    assert_no_pass,
    assert_no_secret,
    assert_no_traceback,
    measured_run_suite,
    short_policy,
)
from selftests.hostile.hostile_api import Hostile, hostile_api
from selftests.unit.api_simulator import make_tls

IP = "127.0.5.1"
USER = "hostile-audit"
PASSWORD = "Hostile-Api-Pw'q\"\n-3Zr7"     # quote, double quote and newline: repr/JSON forms differ
API_IDS = ("API-VERSION", "API-RELAY", "API-AUTH-MATCH", "API-LOCAL-DELIVERY-AUTH", "API-DOMAIN-SMTP-AUTH",
           "API-CATCHALL", "API-BOUNCES-SPF", "API-PASSWORD-POLICY", "API-THROTTLING", "API-OUTBOUND-SPAM",
           "API-IDS-RULES", "API-SYSTEM-EVENTS", "API-MAILING-LISTS", "API-SPF-SPOOL-FILTER", "API-DMARC-CHECK",
           "API-TLS-PROTOCOLS", "API-ANTIVIRUS", "API-SMTP-AUTH-BYPASS", "API-SPOOL-BACKLOG", "API-DOMAIN-2FA",
           "API-REVERSIBLE-PASSWORDS", "API-SPAM-WHITELIST-BYPASS", "API-FORWARD-BLACKLIST-BYPASS")
# Judged from answers the hostile server gives correctly (the public version, the sign-in flags).
HONEST = ("API-VERSION", "API-REVERSIBLE-PASSWORDS")
PER_DOMAIN = ("API-DOMAIN-SMTP-AUTH", "API-CATCHALL", "API-PASSWORD-POLICY", "API-THROTTLING",
              "API-MAILING-LISTS", "API-DOMAIN-2FA", "API-FORWARD-BLACKLIST-BYPASS")
SHORT_API = {"request_timeout_s": 3, "call_deadline_s": 4, "server_deadline_s": 12, "retries": 0,
             "max_domains": 20}
PEAK_RSS_MB = 200            # the whole pytest process (sslyze imported: ~80 MB); reading 100 MB whole costs ~370 MB
WALL_S = 90



@dataclass
class HostileRun:
    """One suite run against a hostile API: the run, its wall time, peak memory and the server."""

    run: AuditRun
    seconds: float
    peak_mb: float
    hostile: Hostile


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    """A throwaway CA and a certificate for the hostile address (given to the suite as --ca-file)."""
    return make_tls(tmp_path_factory.mktemp("hostile-api-tls"), ips=(IP,))


def audit(behaviour: str, tls, tmp_path: Path, **options) -> HostileRun:
    """Run the suite's API tests against one hostile server with a short policy."""
    hostile = Hostile(behaviour, password=PASSWORD, **options)
    policy = short_policy(tmp_path, f"hostile-{behaviour}", api=SHORT_API)
    with hostile_api(IP, hostile, tls.cert, tls.key) as server:
        env = {**os.environ, "MAILAUDIT_API_USER": USER, "MAILAUDIT_API_PASSWORD": PASSWORD}
        run, peak, seconds = measured_run_suite(
            ["--server", IP, "--domain", "hostile.test", "--api-url", server.url, "--ca-file", str(tls.ca),
             "--policy", str(policy), "tests_api/test_api_settings.py"], timeout=WALL_S + 60, env=env)
    return HostileRun(run, seconds, peak, hostile)


def check(result: HostileRun, not_passed: tuple[str, ...], line: str) -> None:
    """What every hostile API case must hold."""
    run = result.run
    assert run.records, run.stdout[-3000:] + run.stderr[-3000:]
    assert_no_pass(run, *not_passed)
    assert_no_secret(run, PASSWORD, *result.hostile.issued, user=USER)
    assert_no_traceback(run)
    assert result.seconds < WALL_S, f"{result.seconds:.0f} s"
    assert 0 < result.peak_mb < PEAK_RSS_MB, f"peak RSS {result.peak_mb:.0f} MB"
    messages = [r["message"] for r in run.records if r["outcome"] in ("error", "inconclusive", "skipped")]
    assert any(line in m for m in messages), (line, messages[:5])
    for record in run.records:
        assert "\n" not in record["message"], record["message"]
    results = json.loads(run.results_json.read_text()) if run.results_json else {}
    assert results.get("results"), "no results JSON"


def test_a_403_quoting_the_token_leaks_nothing(tls, tmp_path):
    """A 403 body quoting the bearer token without the word Bearer: errors, no token anywhere."""
    result = audit("echo_token_403", tls, tmp_path)
    check(result, tuple(i for i in API_IDS if i not in HONEST), "HTTP 403")
    assert result.hostile.issued


def test_the_api_password_as_setting_values_leaks_nothing(tls, tmp_path):
    """The API password returned as the version and as domain settings (shown in repr form, with
    its quote and newline escaped): no output holds it in any encoding, and it passes nothing."""
    result = audit("password_as_value", tls, tmp_path)
    check(result, ("API-VERSION", "API-CATCHALL", "API-DOMAIN-SMTP-AUTH", "API-DOMAIN-2FA"), "[redacted]")


def test_a_trickling_answer_ends_at_the_call_deadline(tls, tmp_path):
    """One byte every 2 s never trips the per-read timeout; the call's total time ends it."""
    result = audit("trickle", tls, tmp_path, pace=2.0)
    check(result, API_IDS, "api.call_deadline_s")
    assert result.seconds < 30


def test_a_100_mb_answer_costs_no_memory(tls, tmp_path):
    """100 MB of domain list: stopped at the size cap while streaming; memory stays bounded."""
    result = audit("huge", tls, tmp_path)
    check(result, API_IDS, "api.max_response_bytes")


def test_a_nesting_bomb_is_one_line(tls, tmp_path):
    """100,000 nested arrays: one line naming the depth cap in every API test, no RecursionError."""
    result = audit("deep", tls, tmp_path)
    check(result, API_IDS, "api.max_json_depth")
    assert "RecursionError" not in result.run.all_text()


def test_100000_domains_are_read_as_a_sample(tls, tmp_path):
    """100,000 listed domains: 20 read (the policy's cap), stated in each per-domain verdict; none
    of those verdicts passes on a sample."""
    result = audit("many_domains", tls, tmp_path, domains=100_000)
    check(result, PER_DOMAIN, "20 of 100000 domains were read (policy api.max_domains)")
    assert sum("domain-settings/" in r for r in result.hostile.requests) == 20
    assert result.seconds < 60


def test_a_slow_server_ends_at_the_family_deadline(tls, tmp_path):
    """Every read takes 1.5 s: the API family of the server ends at its deadline (12 s)."""
    result = audit("slow_all", tls, tmp_path, pace=1.5)
    check(result, tuple(i for i in API_IDS if i not in HONEST), "api.server_deadline_s")
    assert result.seconds < 45


def test_plain_http_on_the_api_port_is_named(tls, tmp_path):
    """Plain HTTP where TLS was expected: named as such, not as a certificate problem."""
    result = audit("plain_http", tls, tmp_path)
    check(result, API_IDS, "the API port answered plain HTTP, not TLS")
    assert not any("certificate" in r["message"] for r in result.run.records)
