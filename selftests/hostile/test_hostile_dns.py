"""The DNS checks against a hostile DNS server (selftests/hostile/hostile_dns.py on 127.0.4.1):
no hostile record or reply yields a pass for a requirement that depends on it, no traceback,
bounded queries, time and memory.

One run of the real suite (``tests_dns``) audits nine fake servers 127.0.4.2-10, each with its own
hostile zone, through the hostile resolver, with a short policy (0.5 s per query, no retry, 2 s of
DNS work per server). Each case below reads its server's verdicts from that run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest

from mailaudit.plugin.fleet import DNS_WORKERS
from selftests.e2e.lab import AuditRun
from selftests.hostile.common import assert_no_pass, assert_no_traceback, measured_run_suite, short_policy
from selftests.hostile.hostile_dns import FANOUT, SLOW, ZONE, HostileDnsServer

CASES = {
    "two-dmarc": "127.0.4.2",
    "bad-dmarc": "127.0.4.3",
    "pct": "127.0.4.4",
    "spf-syntax": "127.0.4.5",
    "spf-loop": "127.0.4.6",
    "fanout": "127.0.4.7",
    "garbage": "127.0.4.8",
    "slow": "127.0.4.9",
    "formerr": "127.0.4.10",
}
DEADLINE_S = 2
RUN_TIMEOUT_S = 90
DMARC = ("DNS-DMARC-RECORD", "DNS-DMARC-POLICY", "DNS-DMARC-REPORTING")
SPF = ("DNS-SPF-RECORD", "DNS-SPF-POLICY", "DNS-SPF-LOOKUPS", "DNS-SPF-AUTHORIZES-SERVER")


@dataclass(frozen=True)
class HostileRun:
    """The run against the hostile zones, how long it took and its peak memory, and what the
    hostile server was asked."""

    run: AuditRun
    peak_mib: float
    wall_s: float
    server: HostileDnsServer

    def of(self, case: str) -> AuditRun:
        """The run's records of one case's server only."""
        ip = CASES[case]
        return dataclasses.replace(self.run, records=[r for r in self.run.records if r["server"] == ip])


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> HostileRun:
    """One audit of every hostile case through the hostile resolver."""
    policy = short_policy(tmp_path_factory.mktemp("hostile-dns"), "hostile-dns", dns={
        "timeout_s": 0.5, "retries": 0, "server_deadline_s": DEADLINE_S, "dnsbl_zones": []})
    with HostileDnsServer() as server:
        args = [arg for ip in CASES.values() for arg in ("--server", ip)]
        args += [arg for case in CASES for arg in ("--domain", f"{case}.{ZONE}")]
        args += ["--dns-server", server.address, "--policy", str(policy), "tests_dns"]
        run, peak_mib, wall_s = measured_run_suite(args, timeout=RUN_TIMEOUT_S)
    return HostileRun(run, peak_mib, wall_s, server)


def _messages(run: AuditRun, requirement: str) -> str:
    return " | ".join(r["message"] for r in run.verdicts(requirement))


def test_the_run_ends_in_bounded_time_and_memory_without_a_traceback(hostile):
    """The whole hostile run ends in well under a minute, below 400 MiB, every case with verdicts,
    and every problem is a plain line (no traceback)."""
    assert_no_traceback(hostile.run)
    assert hostile.wall_s < 60, hostile.wall_s
    assert hostile.peak_mib < 400, hostile.peak_mib
    servers = {r["server"] for r in hostile.run.records}
    assert servers == set(CASES.values()), (servers, hostile.run.stdout[-2000:], hostile.run.stderr[-2000:])


def test_two_dmarc_records_pass_no_dmarc_requirement(hostile):
    """Two (each valid, p=reject) DMARC records: receivers apply no DMARC policy (RFC 7489
    §6.6.3), so DMARC-RECORD, -POLICY and -REPORTING fail, naming the duplicates."""
    run = hostile.of("two-dmarc")
    assert_no_pass(run, *DMARC)
    for requirement in DMARC:
        message = _messages(run, requirement)
        assert "2 DMARC records" in message or "found 2" in message, message


def test_invalid_dmarc_record_passes_no_dmarc_requirement(hostile):
    """An invalid DMARC record (adkim=x) fails all three DMARC requirements, naming the tag."""
    run = hostile.of("bad-dmarc")
    assert_no_pass(run, *DMARC)
    for requirement in DMARC:
        assert "adkim=x" in _messages(run, requirement), _messages(run, requirement)


def test_superscript_pct_is_invalid_not_a_traceback(hostile):
    """``pct=¹⁰⁰`` is not a number in ASCII digits: the record is invalid and the DMARC
    requirements fail naming it (no ValueError)."""
    run = hostile.of("pct")
    assert_no_pass(run, *DMARC)
    for requirement in DMARC:
        assert "pct=¹⁰⁰" in _messages(run, requirement), _messages(run, requirement)
        assert all(r["outcome"] == "failed" for r in run.verdicts(requirement))


def test_spf_syntax_error_passes_no_spf_requirement(hostile):
    """``v=spf1 ip4:<server> foo:bar -all``: a syntax error is a permerror for every IP, so no
    SPF requirement passes although the record ends in -all and lists the server."""
    run = hostile.of("spf-syntax")
    assert_no_pass(run, *SPF)
    for requirement in SPF:
        assert "foo:bar" in _messages(run, requirement), (requirement, _messages(run, requirement))


def test_spf_include_loop_is_named_and_passes_no_spf_requirement(hostile):
    """An include loop is detected and named; DNS-SPF-LOOKUPS reports the loop, not a count."""
    run = hostile.of("spf-loop")
    assert_no_pass(run, *SPF)
    loop = f"spf-loop.{ZONE} -> loop.spf-loop.{ZONE} -> spf-loop.{ZONE}"
    for requirement in SPF:
        assert loop in _messages(run, requirement), (requirement, _messages(run, requirement))
    assert run.verdicts("DNS-SPF-LOOKUPS")[0]["outcome"] == "failed"
    assert "lookups (limit" not in _messages(run, "DNS-SPF-LOOKUPS")


def test_include_fan_out_is_cut_at_the_rfc_limit(hostile):
    """An endless include fan-out of 4 per level costs a few dozen queries in well under a second
    (the old walker asked 320,000 and held 815 MB), and DNS-SPF-LOOKUPS fails."""
    run = hostile.of("fanout")
    asked = hostile.server.asked_under(FANOUT)
    assert 10 <= len(asked) <= 100, len(asked)
    includes = [q for q in asked if q.name.endswith("." + FANOUT) and not q.name.startswith("_")]
    assert includes[-1].at - includes[0].at < 2.0  # typically ~0.1 s: our walk, then pyspf's
    assert_no_pass(run, "DNS-SPF-LOOKUPS", "DNS-SPF-AUTHORIZES-SERVER")
    assert "DNS-querying terms (limit 10)" in _messages(run, "DNS-SPF-LOOKUPS")


@pytest.mark.parametrize(("case", "named"), [("garbage", "malformed answer"), ("formerr", "FORMERR: a format error")])
def test_malformed_answers_are_named_as_such(hostile, case, named):
    """Unparsable replies and FORMERR make the DNS requirements errors that say so, never
    "no answer within 0.5 s" and never a pass."""
    run = hostile.of(case)
    for requirement in ("DNS-MX", "DNS-SPF-RECORD", "DNS-DMARC-RECORD", "DNS-TLSRPT", "DNS-MTA-STS"):
        records = run.verdicts(requirement)
        assert records and all(r["outcome"] == "error" for r in records), (requirement, records)
        message = _messages(run, requirement)
        assert named in message and "no answer within" not in message, (requirement, message)


def test_slow_answers_run_into_the_server_dns_deadline(hostile):
    """Answers of 0.3 s each: the server's DNS work stops at dns.server_deadline_s (2 s); the SPF
    walk (9 slow answers) cannot finish, so the SPF checks are errors naming the bound and none
    passes; the hostile server is asked no more than the deadline allows. (The DNS probes of one
    server run side by side, so the MX answer, 0.6 s away, arrives in time and may be judged.)"""
    run = hostile.of("slow")
    outcomes = {r["requirement"]: r["outcome"] for r in run.records}
    passed = {req for req, outcome in outcomes.items() if outcome == "passed"}
    assert passed <= {"DNS-MX"}, outcomes
    for requirement in ("DNS-SPF-LOOKUPS", "DNS-SPF-AUTHORIZES-SERVER"):
        assert outcomes[requirement] == "error" and "dns.server_deadline_s" in _messages(run, requirement)
    deadline = [r for r in run.records if "dns.server_deadline_s" in r["message"]]
    assert deadline and all(r["outcome"] == "error" for r in deadline), run.records
    # at most DNS_WORKERS probes of the fleet and the test's own run at once, each stopped by the deadline
    assert len(hostile.server.asked_under(SLOW)) <= (DNS_WORKERS + 1) * DEADLINE_S / 0.3 + 4
