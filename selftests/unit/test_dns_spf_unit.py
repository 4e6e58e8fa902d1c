"""SPF, offline: term splitting, the recursive lookup count, and the SPF verdicts."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mailaudit.dns_records import is_spf, parse_spf
from mailaudit.errors import BudgetExceeded, CannotJudge, ProbeError
from mailaudit.evaluate.dns import (
    effective_all,
    evaluate_spf_authorizes,
    evaluate_spf_lookups,
    evaluate_spf_policy,
    evaluate_spf_record,
)
from mailaudit.policy import load_policy
from mailaudit.probes.dns import Answer
from mailaudit.probes.spf import SpfAuthorization, SpfEvaluation, SpfLimits, SpfProbe, SpfRecordCheck, check_spf_record
from mailaudit.verdict import Outcome
from selftests.unit.dns_fakes import FakeClient

POLICY = load_policy(Path(__file__).resolve().parents[2] / "policies" / "baseline.yaml").dns
LIMITS = SpfLimits(POLICY.spf_max_lookups, POLICY.spf_max_void_lookups, POLICY.spf_max_queries)


def _check(record: str, client: FakeClient, domain: str = "example.test") -> SpfRecordCheck:
    return check_spf_record(client, domain, record, LIMITS)


def _probe(*checks: SpfRecordCheck) -> SpfProbe:
    txt = Answer("example.test", "TXT", "NOERROR" if checks else "NODATA", tuple(c.record for c in checks))
    return SpfProbe("example.test", txt, checks)


@pytest.mark.parametrize(("token", "expected"), [
    ("-all", ("-", "all", "")),
    ("include:_spf.example.test", ("+", "include", "_spf.example.test")),
    ("~a:mail.example.test/24", ("~", "a", "mail.example.test")),
    ("mx/24", ("+", "mx", "")),
    ("redirect=_spf.example.test", ("", "redirect", "_spf.example.test")),
    ("exists:%{i}.bl.example.test", ("+", "exists", "%{i}.bl.example.test")),
])
def test_terms_are_read_as_qualifier_name_and_argument(token, expected):
    """Qualifier (``+`` when omitted; none for modifiers), mechanism or modifier name, argument."""
    directive = parse_spf(f"v=spf1 {token}").directives[0]
    assert (directive.qualifier, directive.name, directive.argument) == expected


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


def test_eleventh_term_is_counted_but_not_looked_up():
    """The weak lab's shape: the 11th DNS-querying term stops the walk (RFC 7208 §4.6.4): it is
    counted from the record, never asked, and the message names it."""
    zone = {(f"h{i}.example.test", "A"): (f"192.0.2.{i}",) for i in range(8)}
    client = FakeClient(zone)
    terms = " ".join(f"a:h{i}.example.test" for i in range(8))
    check = _check(f"v=spf1 {terms} a:v1.example.test a:v2.example.test a:v3.example.test -all", client)
    evaluation = evaluate_spf_lookups(_probe(check), POLICY)
    assert not evaluation.passed
    assert "11 DNS-querying terms (limit 10)" in evaluation.message
    assert "a:v3.example.test is DNS-querying term 11" in evaluation.message
    assert not any(name == "v3.example.test" for name, _ in client.asked)
    assert "a:v3.example.test (+1) (not looked up: terms limit reached)" in check.tree.render()


def test_third_void_lookup_stops_the_walk_and_fails():
    """Three void lookups within ten terms: the third is over the limit of two, nothing after it is
    asked, and the count is in the message."""
    client = FakeClient({("h.example.test", "A"): ("192.0.2.1",)})
    check = _check("v=spf1 a:v1.example.test a:v2.example.test a:v3.example.test a:h.example.test -all", client)
    evaluation = evaluate_spf_lookups(_probe(check), POLICY)
    assert not evaluation.passed and "3 void lookups (limit 2)" in evaluation.message
    assert check.walk.stop_kind == "voids"
    assert not any(name == "h.example.test" for name, _ in client.asked)


def test_lookups_within_limits_pass_with_counts():
    """Two lookups and no void pass, counts in the message."""
    client = FakeClient({("example.test", "MX"): ("10 mx.example.test.",),
                         ("_s.example.test", "TXT"): ("v=spf1 -all",)})
    evaluation = evaluate_spf_lookups(_probe(_check("v=spf1 mx include:_s.example.test -all", client)), POLICY)
    assert evaluation.passed and "2 DNS-querying terms, 0 void" in evaluation.message


def test_record_count_and_validity():
    """None, two, a syntax error: failures; one valid record passes; too many lookups is not a
    syntax error (DNS-SPF-LOOKUPS judges it)."""
    client = FakeClient({(f"h{i}.example.test", "A"): ("192.0.2.1",) for i in range(12)})
    assert "found none" in evaluate_spf_record(_probe()).message
    two = evaluate_spf_record(_probe(_check("v=spf1 -all", client), _check("v=spf1 ~all", client)))
    assert not two.passed and "found 2" in two.message
    bad = evaluate_spf_record(_probe(_check("v=spf1 foo:bar -all", client)))
    assert not bad.passed and "'foo:bar': unknown mechanism" in bad.message
    many = " ".join(f"a:h{i}.example.test" for i in range(12))
    assert evaluate_spf_record(_probe(_check(f"v=spf1 {many} -all", client))).passed


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
    probe = _probe(_check("v=spf1 ip4:192.0.2.1 -all", FakeClient({})))
    assert evaluate_spf_authorizes(probe, SpfAuthorization("example.test", ("192.0.2.1",), (ok,))).passed
    both = SpfAuthorization("example.test", ("192.0.2.1", "192.0.2.2"), (ok, bad))
    evaluation = evaluate_spf_authorizes(probe, both)
    assert not evaluation.passed and "192.0.2.2 evaluates to softfail" in evaluation.message


# --- invalid records never pass a dependent requirement ----------------------------------------

def _all_four(probe: SpfProbe) -> dict[str, object]:
    """Each SPF requirement's evaluation (or the ProbeError it raised) for one probe."""
    outcomes: dict[str, object] = {}
    authorization = SpfAuthorization("example.test", ("192.0.2.1",),
                                     (SpfEvaluation("192.0.2.1", "pass", "pyspf says pass", 1, 0),))
    for name, judge in (("record", lambda: evaluate_spf_record(probe)),
                        ("policy", lambda: evaluate_spf_policy(probe, POLICY)),
                        ("lookups", lambda: evaluate_spf_lookups(probe, POLICY)),
                        ("authorizes", lambda: evaluate_spf_authorizes(probe, authorization))):
        try:
            outcomes[name] = judge()
        except ProbeError as exc:
            outcomes[name] = exc
    return outcomes


def test_syntax_error_fails_or_errors_every_spf_requirement():
    """A record with a syntax error: RECORD, POLICY and AUTHORIZES fail naming the record and the
    term, LOOKUPS cannot count (CannotJudge); none passes, even though it ends in -all and pyspf
    (stubbed) said pass."""
    probe = _probe(_check("v=spf1 ip4:192.0.2.1 foo:bar -all", FakeClient({})))
    outcomes = _all_four(probe)
    for name in ("record", "policy", "authorizes"):
        assert outcomes[name].outcome is Outcome.FAILED, (name, outcomes[name])
        assert "'foo:bar': unknown mechanism" in outcomes[name].message
    assert isinstance(outcomes["lookups"], CannotJudge) and "syntax error" in str(outcomes["lookups"])
    assert "192.0.2.1 evaluates to permerror" in outcomes["authorizes"].message


def test_include_loop_is_named_and_no_spf_requirement_passes():
    """example.test -> _a -> example.test: the loop is detected without repeating a query, named in
    every message, and DNS-SPF-LOOKUPS reports the loop, not a count."""
    client = FakeClient({("_a.example.test", "TXT"): ("v=spf1 include:example.test -all",),
                         ("example.test", "TXT"): ("v=spf1 include:_a.example.test -all",)})
    probe = _probe(_check("v=spf1 include:_a.example.test -all", client))
    outcomes = _all_four(probe)
    loop = "example.test -> _a.example.test -> example.test"
    for name, evaluation in outcomes.items():
        assert evaluation.outcome is Outcome.FAILED, (name, evaluation)
        assert loop in evaluation.message, (name, evaluation.message)
    assert "lookups (limit" not in outcomes["lookups"].message and "DNS-querying terms (limit" not in \
        outcomes["lookups"].message
    assert client.queries == 1


def test_broken_include_makes_the_record_invalid():
    """An include whose target has no SPF record, or a syntax error, is a permerror of the whole
    record: RECORD fails naming it, LOOKUPS cannot pass."""
    client = FakeClient({("_bad.example.test", "TXT"): ("v=spf1 ip4:192.0.2.300 -all",)})
    for record, text in (("v=spf1 include:_none.example.test -all", "no SPF record there"),
                         ("v=spf1 include:_bad.example.test -all", "_bad.example.test has a syntax error")):
        outcomes = _all_four(_probe(_check(record, client)))
        assert outcomes["record"].outcome is Outcome.FAILED and text in outcomes["record"].message
        assert outcomes["policy"].outcome is Outcome.FAILED
        assert outcomes["authorizes"].outcome is Outcome.FAILED
        assert isinstance(outcomes["lookups"], CannotJudge) and text in str(outcomes["lookups"])


def test_two_records_never_pass_lookups_or_policy():
    """Two SPF records within every limit: LOOKUPS cannot pass (permerror before any lookup),
    POLICY fails naming each record's all."""
    client = FakeClient({})
    probe = _probe(_check("v=spf1 -all", client), _check("v=spf1 ip4:192.0.2.1 -all", client))
    outcomes = _all_four(probe)
    assert isinstance(outcomes["lookups"], CannotJudge) and "2 SPF records" in str(outcomes["lookups"])
    assert outcomes["policy"].outcome is Outcome.FAILED and "2 SPF records" in outcomes["policy"].message
    assert outcomes["authorizes"].outcome is Outcome.FAILED


class FanOutClient(FakeClient):
    """Every name under fan.test publishes an SPF record including four names below it."""

    def query(self, name: str, rdtype: str, dnssec: bool = False) -> Answer:
        """Four includes per level, for ever; addresses for nothing."""
        self.asked.append((name, rdtype))
        if rdtype != "TXT":
            return Answer(name, rdtype, "NXDOMAIN")
        includes = " ".join(f"include:{c}.{name}" for c in "abcd")
        return Answer(name, rdtype, "NOERROR", (f"v=spf1 {includes} -all",))


def test_include_fan_out_stops_after_ten_lookups():
    """An include fan-out of 4 per level ends after the RFC's 10 DNS-querying terms: 10 TXT
    queries, the rest counted from the records already read, the count a lower bound."""
    client = FanOutClient({})
    check = _check(FanOutClient({}).query("fan.test", "TXT").records[0], client, domain="fan.test")
    assert client.queries == 10
    assert check.walk.stop_kind == "terms" and check.walk.partial
    evaluation = evaluate_spf_lookups(_probe(check), POLICY)
    assert not evaluation.passed and "at least" in evaluation.message


def test_query_cap_ends_a_walk_the_policy_let_run_long():
    """With the RFC limits lifted by a policy, the hard cap (dns.spf_max_queries) still ends the
    walk; RECORD and LOOKUPS are then errors naming the cap, never passes."""
    client = FanOutClient({})
    record = client.query("fan.test", "TXT").records[0]
    client.asked.clear()
    check = check_spf_record(client, "fan.test", record, SpfLimits(terms=10_000, voids=10_000, queries=25))
    assert client.queries == 25 and check.walk.stop_kind == "queries"
    lenient = dataclasses.replace(POLICY, spf_max_lookups=10_000, spf_max_void_lookups=10_000)
    for judge in (lambda: evaluate_spf_record(_probe(check)), lambda: evaluate_spf_lookups(_probe(check), lenient)):
        with pytest.raises(BudgetExceeded, match=r"dns\.spf_max_queries"):
            judge()


def test_mx_with_more_than_ten_names_is_a_permerror():
    """RFC 7208 §4.6.4: an mx mechanism naming more than 10 hosts is a permerror."""
    client = FakeClient({("example.test", "MX"): tuple(f"10 mx{i}.example.test." for i in range(11))})
    evaluation = evaluate_spf_record(_probe(_check("v=spf1 mx -all", client)))
    assert not evaluation.passed and "more than 10" in evaluation.message


def test_redirect_is_ignored_when_the_record_has_an_all():
    """RFC 7208 §6.1: with an all, redirect= is not followed (no lookup, no count)."""
    client = FakeClient({})
    check = _check("v=spf1 redirect=_r.example.test -all", client)
    assert client.queries == 0 and check.lookups == 0 and effective_all(check) == "-all"


def test_threshold_verdicts_name_their_policy_leaves():
    """SPF-POLICY and SPF-LOOKUPS cite the policy leaves that decided them."""
    probe = _probe(_check("v=spf1 -all", FakeClient({})))
    assert evaluate_spf_policy(probe, POLICY).policy_keys == ("dns.spf_allowed_all",)
    assert evaluate_spf_lookups(probe, POLICY).policy_keys == ("dns.spf_max_lookups", "dns.spf_max_void_lookups")
