"""SPF, offline: term splitting, the recursive lookup count, and the SPF verdicts."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailaudit.evaluate.dns import (
    effective_all,
    evaluate_spf_authorizes,
    evaluate_spf_lookups,
    evaluate_spf_policy,
    evaluate_spf_record,
)
from mailaudit.policy import load_policy
from mailaudit.probes.dns import Answer, SpfEvaluation, SpfProbe, SpfRecordCheck, is_spf, split_term, walk_spf
from selftests.unit.dns_fakes import FakeClient

POLICY = load_policy(Path(__file__).resolve().parents[2] / "policies" / "baseline.yaml").dns


def _check(record: str, client: FakeClient, domain: str = "example.test", error_kind: str | None = None):
    tree = walk_spf(client, domain, record, (domain,))
    tokens = [split_term(t) for t in record.split()[1:]]
    all_term = next((f"{q or '+'}all" for q, n, _ in tokens if n == "all"), None)
    redirect = next((v for _, n, v in tokens if n == "redirect="), None)
    return SpfRecordCheck(record, "bad" if error_kind else None, error_kind, (), tree, all_term, redirect)


def _probe(*checks: SpfRecordCheck) -> SpfProbe:
    txt = Answer("example.test", "TXT", "NOERROR" if checks else "NODATA", tuple(c.record for c in checks))
    return SpfProbe("example.test", txt, checks)


@pytest.mark.parametrize(("token", "expected"), [
    ("-all", ("-", "all", "")),
    ("include:_spf.example.test", ("", "include", "_spf.example.test")),
    ("~a:mail.example.test/24", ("~", "a", "mail.example.test/24")),
    ("mx/24", ("", "mx", "/24")),
    ("redirect=_spf.example.test", ("", "redirect=", "_spf.example.test")),
    ("exists:%{i}.bl.example.test", ("", "exists", "%{i}.bl.example.test")),
])
def test_split_term(token, expected):
    """Qualifier, mechanism or modifier name, and argument."""
    assert split_term(token) == expected


def test_is_spf_follows_rfc_7208_section_4_5():
    """Only ``v=spf1`` exactly or followed by a space starts an SPF record."""
    assert is_spf("v=spf1 -all") and is_spf("V=SPF1") and not is_spf("v=spf10 -all")


def test_lookup_count_is_recursive_and_counts_voids():
    """Includes add their own terms; a name with no address is a void lookup; ip4/all cost nothing."""
    client = FakeClient({
        ("_inc.example.test", "TXT"): ("v=spf1 a:h1.example.test include:_deep.example.test ~all",),
        ("_deep.example.test", "TXT"): ("v=spf1 a:gone.example.test -all", "unrelated"),
        ("h1.example.test", "A"): ("192.0.2.1",),
        ("example.test", "MX"): ("10 mx.example.test.",),
    })
    check = _check("v=spf1 ip4:192.0.2.0/24 mx include:_inc.example.test exists:nope.example.test -all", client)
    assert check.lookups == 6  # mx, include, exists + a, include + a
    assert check.voids == 2  # gone.example.test (NXDOMAIN), nope.example.test
    assert "[6 lookups, 2 void]" in check.tree.render()


def test_include_loop_and_missing_include_are_marked():
    """A loop is not followed forever; an include without SPF record is marked and void."""
    client = FakeClient({("_a.example.test", "TXT"): ("v=spf1 include:example.test -all",)})
    check = _check("v=spf1 include:_a.example.test include:none.example.test -all", client)
    text = check.tree.render()
    assert "include/redirect loop" in text and "no SPF record" in text
    assert check.voids == 1


def test_malformed_domain_is_a_record_problem_not_a_dns_error():
    """A term naming an impossible domain is marked in the tree; nothing is asked."""
    check = _check("v=spf1 include:bad..example.test -all", FakeClient({}))
    assert "not a valid domain name" in check.tree.render() and check.lookups == 1


def test_macros_count_but_are_not_resolved():
    """A macro term costs one lookup and asks nothing."""
    client = FakeClient({})
    check = _check("v=spf1 exists:%{i}._spf.example.test -all", client)
    assert check.lookups == 1 and check.voids == 0


def test_eleven_lookups_and_three_voids_fail_with_the_counts():
    """The weak lab's shape: 11 DNS-querying terms and 3 voids, both named in the message."""
    zone = {(f"h{i}.example.test", "A"): (f"192.0.2.{i}",) for i in range(8)}
    client = FakeClient(zone)
    terms = " ".join(f"a:h{i}.example.test" for i in range(8))
    check = _check(f"v=spf1 {terms} a:v1.example.test a:v2.example.test a:v3.example.test -all", client)
    evaluation = evaluate_spf_lookups(_probe(check), POLICY)
    assert not evaluation.passed
    assert "11 DNS-querying terms (limit 10)" in evaluation.message
    assert "3 void lookups (limit 2)" in evaluation.message


def test_lookups_within_limits_pass_with_counts():
    """Two lookups and no void pass, counts in the message."""
    client = FakeClient({("example.test", "MX"): ("10 mx.example.test.",),
                         ("_s.example.test", "TXT"): ("v=spf1 -all",)})
    evaluation = evaluate_spf_lookups(_probe(_check("v=spf1 mx include:_s.example.test -all", client)), POLICY)
    assert evaluation.passed and "2 DNS-querying terms, 0 void" in evaluation.message


def test_record_count_and_validity():
    """None, two, a syntax error: failures; one valid record passes; limit errors are not syntax errors."""
    client = FakeClient({})
    assert "found none" in evaluate_spf_record(_probe()).message
    two = evaluate_spf_record(_probe(_check("v=spf1 -all", client), _check("v=spf1 ~all", client)))
    assert not two.passed and "found 2" in two.message
    assert not evaluate_spf_record(_probe(_check("v=spf1 -all", client, error_kind="SPFSyntaxError"))).passed
    assert evaluate_spf_record(_probe(_check("v=spf1 -all", client, error_kind="SPFTooManyDNSLookups"))).passed


@pytest.mark.parametrize(("record", "ok"), [
    ("v=spf1 mx -all", True),
    ("v=spf1 mx ~all", False),
    ("v=spf1 mx +all", False),
    ("v=spf1 mx all", False),
    ("v=spf1 mx ?all", False),
    ("v=spf1 mx", False),
])
def test_policy_accepts_only_the_allowed_all(record, ok):
    """Baseline allows -all only; +all/?all/no all never pass."""
    client = FakeClient({("example.test", "MX"): ("10 mx.example.test.",)})
    assert evaluate_spf_policy(_probe(_check(record, client)), POLICY).passed is ok


def test_policy_softfail_allowed_when_the_policy_says_so():
    """A policy listing ~all accepts it, but never +all."""
    import dataclasses

    lenient = dataclasses.replace(POLICY, spf_allowed_all=("-all", "~all", "+all"))
    client = FakeClient({})
    assert evaluate_spf_policy(_probe(_check("v=spf1 ~all", client)), lenient).passed
    assert not evaluate_spf_policy(_probe(_check("v=spf1 +all", client)), lenient).passed


def test_redirect_supplies_the_all():
    """With redirect= and no all, the target's all decides (RFC 7208 §6.1)."""
    client = FakeClient({("_r.example.test", "TXT"): ("v=spf1 ip4:192.0.2.1 -all",)})
    check = _check("v=spf1 redirect=_r.example.test", client)
    assert effective_all(check) == "-all"
    assert evaluate_spf_policy(_probe(check), POLICY).passed


def test_authorizes_requires_pass_for_every_ip():
    """One IP not passing fails the requirement and is named with its result."""
    ok = SpfEvaluation("192.0.2.1", "pass", "sender SPF authorized", 1, 0)
    bad = SpfEvaluation("192.0.2.2", "softfail", "domain owner discourages", 1, 0)
    assert evaluate_spf_authorizes("example.test", [ok], "").passed
    evaluation = evaluate_spf_authorizes("example.test", [ok, bad], "")
    assert not evaluation.passed and "192.0.2.2 evaluates to softfail" in evaluation.message
