"""The API client's bounds against hostile servers on loopback (issue 13): a trickling answer, a
100 MB body, a nesting bomb, 5,000 domains, a slow server, plain HTTP on the TLS port, echoed
tokens and passwords. Each ends as one line (BudgetExceeded / ApiError) within its bound, never
as a pass, a traceback or a leaked secret."""

from __future__ import annotations

import copy
import time
import tracemalloc

import pytest

from mailaudit.errors import ApiError, BudgetExceeded
from mailaudit.evaluate import api as judge
from mailaudit.fieldmap import load_fieldmap
from mailaudit.policy import load_policy
from mailaudit.probes.smartermail import ApiSettings, json_depth, parse_json, sample_domains, take_snapshot
from mailaudit.redact import redact
from mailaudit.verdict import Outcome
from selftests.hostile.hostile_api import Hostile, hostile_api
from selftests.unit.api_simulator import LAB_PASSWORD, LAB_USER, OFFLINE_URL, ROOT, make_tls, offline_session, profile

FIELDMAP = load_fieldmap()
POLICY = load_policy(ROOT / "policies" / "baseline.yaml").api
PASSWORD = "Unit-Hostile-Pw'q\"\n-8Kd"


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    """A throwaway CA and a certificate for 127.0.0.1."""
    return make_tls(tmp_path_factory.mktemp("hostile-tls"))


def settings(url: str, tls, **bounds) -> ApiSettings:
    """Client settings with short bounds (a self-test never waits out a slow case)."""
    values = {"timeout_s": 5.0, "call_deadline_s": 5.0, "server_deadline_s": 20.0, "retries": 0,
              "backoff_s": 0.0, **bounds}
    return ApiSettings(url, "audit", PASSWORD, verify=str(tls.ca), **values)


def run(behaviour: str, tls, priority=(), **kwargs):
    """Snapshot a hostile server with the given bounds: (snapshot or exception, seconds, server state)."""
    bounds = {k: kwargs.pop(k) for k in list(kwargs) if k in ApiSettings.__dataclass_fields__}
    hostile = Hostile(behaviour, password=PASSWORD, **kwargs)
    with hostile_api("127.0.0.1", hostile, tls.cert, tls.key) as server:
        started = time.monotonic()
        try:
            outcome = take_snapshot(settings(server.url, tls, **bounds), FIELDMAP, "hostile",
                                    priority_domains=priority)
        except (ApiError, BudgetExceeded) as exc:
            outcome = exc
        return outcome, time.monotonic() - started, hostile


def test_a_trickling_answer_ends_at_the_call_deadline(tls):
    """One byte every 0.4 s never trips the per-read timeout (5 s), but the call's total time does."""
    outcome, seconds, _ = run("trickle", tls, pace=0.4, call_deadline_s=1.5)
    assert isinstance(outcome, BudgetExceeded), outcome
    assert "api.call_deadline_s" in str(outcome) and "\n" not in str(outcome)
    assert seconds < 4


def test_a_100_mb_answer_is_dropped_at_the_size_cap_without_holding_it(tls):
    """A 100 MB domain list (no Content-Length) stops at the cap; memory stays a few MB."""
    tracemalloc.start()
    try:
        outcome, seconds, _ = run("huge", tls, max_response_bytes=1_000_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(outcome, BudgetExceeded), outcome
    assert "larger than 1000000 bytes (policy api.max_response_bytes)" in str(outcome)
    assert peak < 30_000_000, f"peak {peak} bytes"
    assert seconds < 10


def test_a_nesting_bomb_is_refused_before_parsing(tls):
    """100,000 nested arrays: one BudgetExceeded line naming the depth cap, no RecursionError."""
    outcome, seconds, _ = run("deep", tls)
    assert isinstance(outcome, BudgetExceeded), outcome
    assert "deeper than 64 levels (policy api.max_json_depth)" in str(outcome)
    assert seconds < 5


def test_many_domains_are_read_as_a_stated_sample(tls):
    """5,000 listed domains with a cap of 10: ten are read (the audited one among them); a
    per-domain check without a violation in the sample is an error, not a pass."""
    outcome, seconds, hostile = run("many_domains", tls, domains=5000, max_domains=10,
                                    priority=("d004321.hostile.test",))
    assert not isinstance(outcome, Exception), outcome
    assert len(outcome.domains) == 10 and outcome.domains_listed == 5000
    assert "d004321.hostile.test" in outcome.domains
    assert sum("domain-settings/" in r for r in hostile.requests) == 10
    with pytest.raises(BudgetExceeded, match="a sample: 10 of 5000 domains were read") as info:
        judge.evaluate_catchall(outcome, POLICY)
    assert "no pass" in str(info.value) and info.value.evidence
    assert seconds < 15


def test_a_violation_in_the_sample_still_fails_and_says_sample():
    """A failure found among the sampled domains is a real observation: failed, naming the sample."""
    data = copy.deepcopy(profile("weak"))
    template = data["domains"].pop("legacy.weak.test")
    data["domains"] = {f"d{i:03d}.weak.test": copy.deepcopy(template) for i in range(40)}
    session, _, _ = offline_session("custom", data)
    snap = take_snapshot(ApiSettings(OFFLINE_URL, LAB_USER, LAB_PASSWORD, backoff_s=0, max_domains=4), FIELDMAP,
                         "s", session=session, sleep=lambda s: None)
    evaluation = judge.evaluate_catchall(snap, POLICY)
    assert evaluation.outcome is Outcome.FAILED
    assert "(a sample: 4 of 40 domains were read (policy api.max_domains))" in evaluation.message
    assert "domains: a sample: 4 of 40" in evaluation.evidence


def test_a_slow_server_ends_at_the_server_deadline(tls):
    """Every read takes 0.4 s; with a 1.5 s family deadline the snapshot stops reading, and each
    requirement needing an unread endpoint is a BudgetExceeded error."""
    outcome, seconds, _ = run("slow_all", tls, pace=0.4, server_deadline_s=1.5)
    assert seconds < 4
    if isinstance(outcome, BudgetExceeded):
        assert "api.server_deadline_s" in str(outcome)
        return
    with pytest.raises(BudgetExceeded, match=r"api\.server_deadline_s"):
        judge.evaluate_ids_rules(outcome, POLICY)


def test_plain_http_on_the_api_port_is_named_as_such(tls):
    """An https:// URL whose port answers plain HTTP is not reported as a certificate problem."""
    outcome, _, _ = run("plain_http", tls)
    assert isinstance(outcome, ApiError)
    assert "answered plain HTTP, not TLS" in str(outcome) and "certificate" not in str(outcome)


def test_a_403_quoting_the_token_does_not_leak_it(tls):
    """A 403 body quoting the bearer token (without 'Bearer'): the error line holds no token."""
    outcome, _, hostile = run("echo_token_403", tls)
    assert not isinstance(outcome, Exception), outcome
    with pytest.raises(ApiError, match="HTTP 403") as info:
        judge.evaluate_dmarc_check(outcome, POLICY)
    text = redact(str(info.value))
    assert hostile.issued and not any(token in str(info.value) for token in hostile.issued)
    assert not any(token[:12] in text for token in hostile.issued)


def test_the_password_returned_as_a_setting_never_reaches_a_verdict(tls):
    """The API password sent back as setting values (shown in repr form, quotes and newline
    escaped) appears in no message or evidence, in any encoding."""
    outcome, _, _ = run("password_as_value", tls)
    assert not isinstance(outcome, Exception), outcome
    texts = []
    for evaluate in (judge.evaluate_version, judge.evaluate_catchall, judge.evaluate_domain_2fa,
                     judge.evaluate_domain_smtp_auth):
        evaluation = evaluate(outcome, POLICY)
        assert evaluation.outcome is not Outcome.PASSED, evaluation.message
        texts += [evaluation.message, evaluation.evidence]
    blob = "\n".join(texts)
    for form in (PASSWORD, repr(PASSWORD)[1:-1], PASSWORD.replace("\n", "\\n"), "Unit-Hostile-Pw"):
        assert form not in blob, form


# --- offline pieces -----------------------------------------------------------------------------

def test_json_depth_ignores_brackets_in_strings():
    """Brackets inside strings do not count; escaped quotes do not end a string."""
    assert json_depth('{"a": "[[[[\\"[[["}', 3) == 1
    assert json_depth("[[[]]]", 10) == 3
    assert json_depth("[" * 1000 + "]" * 1000, 64) == 65          # counting stops past the cap


def test_parse_json_bounds():
    """Deep JSON raises BudgetExceeded; malformed or non-UTF-8 bodies are simply not JSON."""
    with pytest.raises(BudgetExceeded, match=r"api\.max_json_depth"):
        parse_json(b"[" * 100_000 + b"]" * 100_000, 64, "x")
    assert parse_json(b'{"a": [1]}', 64, "x") == ({"a": [1]}, True)
    assert parse_json(b'{"a": ', 64, "x") == (None, False)
    assert parse_json(b"\xff\xfe{}", 64, "x") == (None, False)
    assert parse_json(b'{"n": ' + b"9" * 5000 + b"}", 64, "x") == (None, False)   # int too long


def test_sample_is_spread_deterministic_and_keeps_the_priority_domain():
    """A sample covers the whole sorted list evenly and always holds the audited domain."""
    names = [f"d{i:04d}.test" for i in range(1000)]
    sample = sample_domains(names, 10, ("d0999.test",))
    assert len(sample) == 10 and "d0999.test" in sample and "d0000.test" in sample
    assert sample == sample_domains(names, 10, ("d0999.test",))
    assert sample_domains(names[:5], 10) == tuple(names[:5])
