"""End to end against the lab's real DNS: every DNS-* ID passes on hardened and fails on weak with
the evidence in the message; SERVFAIL, timeouts and a refusing blocklist give *errors*.

The DNS tests run through lab/audit (the same inputs as the demo) with the validating resolver
(Unbound, 127.0.0.54, needed for DNS-DANE) and the lab policy whose blocklist is the lab's own zone,
so no public blocklist is ever queried.
"""

from __future__ import annotations

from functools import cache

import pytest

from selftests.e2e.lab import REPO, AuditRun, run_suite
from selftests.unit.dns_fakes import MisbehavingDnsServer

LAB_POLICY = str(REPO / "lab" / "dns" / "lab-policy.yaml")
VALIDATING_RESOLVER = "127.0.0.54"
DNS_ARGS = ("--dns-server", VALIDATING_RESOLVER, "--policy", LAB_POLICY, "--dkim-selector", "lab", "tests_dns")

# requirement -> (text in the hardened pass message, texts in the weak failure message)
EXPECTED = {
    "DNS-MX": ("127.0.0.10 is reached", ["mx-old.weak.test has no A/AAAA record (dangling MX)"]),
    "DNS-SPF-RECORD": ("one valid SPF record", ["found 2", "permerror"]),
    "DNS-SPF-POLICY": ("ends in -all", ["2 SPF records", "ends in +all", "ends in ?all"]),
    "DNS-SPF-LOOKUPS": ("2 DNS-querying terms, 0 void lookups",
                        ["11 DNS-querying terms (limit 10)", "a:void3.weak.test is DNS-querying term 11"]),
    "DNS-SPF-AUTHORIZES-SERVER": ("SPF pass for 127.0.0.10", ["127.0.0.20 evaluates to permerror"]),
    "DNS-DMARC-RECORD": ("one valid DMARC record", ["found 2"]),
    "DNS-DMARC-POLICY": ("p=reject sp=reject pct=100", ["2 DMARC records", "p=none", "pct=50"]),
    "DNS-DMARC-REPORTING": ("dmarc@reports.test (external, authorized)",
                            ["2 DMARC records", "has no rua", "weak.test._report._dmarc.reports.test"]),
    "DNS-DKIM": ("2048 bits", ["RSA key of 512 bits", "RFC 8301"]),
    "DNS-PTR": ("127.0.0.10 <-> mail.hardened.test",
                ["dsl-20.pool.weak.test", "no name resolves back to 127.0.0.20"]),
    "DNS-DNSBL": ("127.0.0.10 not listed", ["127.0.0.20 listed (127.0.0.2)"]),
    "DNS-MTA-STS": ("mode enforce", ["mode is testing, expected enforce", "mail.weak.test"]),
    "DNS-TLSRPT": ("tlsrpt@hardened.test", ["expected a v=TLSRPTv1 record, found none"]),
    "DNS-DANE": ("DNSSEC-validated and matching", ["matches the certificate the server presents"]),
}


@cache
def dns_audit(profile: str) -> AuditRun:
    """The DNS requirements of one lab server, through lab/audit, once per self-test session."""
    return run_suite(list(DNS_ARGS), via_lab_audit=profile)


def _only(run: AuditRun, requirement: str) -> dict:
    records = run.verdicts(requirement)
    assert len(records) == 1, (requirement, records, run.stdout[-3000:])
    return records[0]


@pytest.mark.lab
@pytest.mark.parametrize("requirement", sorted(EXPECTED))
def test_dns_requirement_passes_on_hardened(requirement):
    """Each DNS-* requirement passes on the exemplary hardened.test."""
    record = _only(dns_audit("hardened"), requirement)
    assert record["outcome"] == "passed", record
    assert EXPECTED[requirement][0] in record["message"], record


@pytest.mark.lab
@pytest.mark.parametrize("requirement", sorted(EXPECTED))
def test_dns_requirement_fails_on_weak_with_evidence(requirement):
    """Each DNS-* requirement fails on weak.test, the message naming the staged fault."""
    record = _only(dns_audit("weak"), requirement)
    assert record["outcome"] == "failed", record
    for text in EXPECTED[requirement][1]:
        assert text in record["message"], (text, record)


@pytest.mark.lab
def test_report_carries_the_spf_include_tree_with_counts():
    """The HTML report holds the SPF records and their include tree with lookup counts; the walk
    stopped at the 11th DNS-querying term (RFC 7208 §4.6.4), which is counted but not asked."""
    run = dns_audit("weak")
    assert run.html is not None
    html = run.html.read_text(encoding="utf-8")
    assert "[11 lookups, 2 void]" in html
    assert "include:_spf2.weak.test (+1)" in html
    assert "a:void2.weak.test (+1 void)" in html
    assert "a:void3.weak.test (+1) (not looked up: terms limit reached)" in html


@pytest.mark.lab
def test_servfail_is_an_error_never_a_verdict():
    """A zone Knot answers SERVFAIL for makes its DNS requirements errors, naming the SERVFAIL."""
    run = run_suite(["--server", "127.0.0.10", "--domain", "servfail.test", "--dns-server", "127.0.0.53",
                     "--policy", LAB_POLICY, "tests_dns"])
    for requirement in ("DNS-MX", "DNS-SPF-RECORD", "DNS-SPF-AUTHORIZES-SERVER", "DNS-DMARC-RECORD",
                        "DNS-MTA-STS", "DNS-TLSRPT", "DNS-DANE"):
        record = _only(run, requirement)
        assert record["outcome"] == "error", record
        assert "SERVFAIL" in record["message"], record


@pytest.mark.lab
def test_resolver_timeout_is_an_error_never_a_verdict(tmp_path):
    """A resolver that never answers turns every DNS requirement into an error within the policy's budget."""
    policy = tmp_path / "fast.yaml"
    policy.write_text(f"extends: {LAB_POLICY}\nname: fast\ndns:\n"
                      "  timeout_s: {value: 0.3, source: test}\n  retries: {value: 0, source: test}\n")
    with MisbehavingDnsServer(None) as silent:
        run = run_suite(["--server", "127.0.0.10", "--domain", "hardened.test", "--dns-server",
                         f"127.0.0.1:{silent.port}", "--policy", str(policy), "tests_dns"], timeout=120)
    dns_records = [r for r in run.records if r["requirement"].startswith("DNS-")]
    assert dns_records, run.stdout[-3000:] + run.stderr[-3000:]
    for record in dns_records:
        if record["requirement"] == "DNS-DKIM":
            assert record["outcome"] == "skipped", record  # no selector given: nothing was asked
            continue
        assert record["outcome"] == "error", record
        assert "no answer within 0.3 s" in record["message"], record


@pytest.mark.lab
def test_blocklist_answering_an_error_code_is_an_error_for_that_zone(tmp_path):
    """A zone answering 127.255.255.254 (query refused) is an error for that zone, not a listing;
    the other zone still gives its verdict."""
    policy = tmp_path / "two-zones.yaml"
    policy.write_text(
        f"extends: {LAB_POLICY}\nname: two-zones\ndns:\n  dnsbl_zones:\n    source: test\n    value:\n"
        "      - {zone: dnsbl.test, listed: [127.0.0.2/32], errors: [127.255.255.0/24]}\n"
        "      - {zone: dnsbl-refusing.test, errors: [127.255.255.0/24]}\n")
    run = run_suite(["--server", "mail.hardened.test", "--dns-server", "127.0.0.53", "--policy", str(policy),
                     "tests_dns/test_dnsbl.py"])
    outcomes = run.outcomes("DNS-DNSBL")
    assert outcomes == {"dnsbl.test": "passed", "dnsbl-refusing.test": "error"}, run.records
    refused = next(r for r in run.verdicts("DNS-DNSBL") if r["variant"] == "dnsbl-refusing.test")
    assert "127.255.255.254" in refused["message"] and "test entry 127.0.0.2" in refused["message"]


@pytest.mark.lab
@pytest.mark.parametrize(("outbound_ip", "outcome", "text"), [
    ("192.0.2.10", "passed", "SPF pass for 192.0.2.10"),
    ("192.0.2.11", "failed", "192.0.2.11 evaluates to fail"),
])
def test_spf_is_evaluated_for_the_outbound_ip(outbound_ip, outcome, text):
    """With --outbound-ip, SPF is evaluated for that address instead of the server's own."""
    run = run_suite(["--server", "mail.hardened.test", "--dns-server", VALIDATING_RESOLVER, "--policy", LAB_POLICY,
                     "--outbound-ip", outbound_ip, "tests_dns/test_spf.py"])
    record = _only(run, "DNS-SPF-AUTHORIZES-SERVER")
    assert record["outcome"] == outcome and text in record["message"], record
