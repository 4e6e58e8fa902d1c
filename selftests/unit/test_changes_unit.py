"""Offline tests of --baseline: what changed since the previous run, by outcome only, and the
--fail-on new exit status."""

import json

import pytest

from mailaudit.changes import (
    change_lines,
    compare,
    exit_status_on_new,
    load_baseline,
    summary_line,
)
from mailaudit.errors import ConfigError
from mailaudit.schema import validate_document
from selftests.unit.results_fakes import document, lab_sample, record

MX = "mail.example.test"
OTHER = "mx2.example.test"


def _compare(before_outcome, now_outcome):
    before = document([record(MX, "SMTP-VRFY-EXPN", before_outcome)] if before_outcome else [], servers=[MX])
    now = document([record(MX, "SMTP-VRFY-EXPN", now_outcome)] if now_outcome else [], servers=[MX])
    return compare(before, now).items


@pytest.mark.parametrize(("before", "now", "change"), [
    ("passed", "failed", "new failure"), ("error", "failed", "new failure"), ("waived", "failed", "new failure"),
    ("skipped", "failed", "new failure"), (None, "failed", "new failure"),
    ("passed", "error", "new error"), ("failed", "error", "new error"), (None, "error", "new error"),
    ("failed", "failed", "still failing"), ("error", "error", "still error"),
    ("failed", "passed", "fixed"),
    ("failed", "waived", "changed"), ("error", "passed", "changed"), ("passed", "skipped", "changed"),
    ("failed", "inconclusive", "changed"),
    (None, "passed", "new"), (None, "skipped", "new"), ("failed", None, "gone"),
    ("passed", "passed", "unchanged"), ("inconclusive", "inconclusive", "unchanged"),
])
def test_each_transition_of_outcome_is_classified(before, now, change):
    """Every (previous, current) outcome pair gets its documented change."""
    (item,) = _compare(before, now)
    assert (item.change, item.previous, item.outcome) == (change, before, now)


def test_messages_that_change_every_run_are_not_a_change():
    """Probe addresses and timings in messages differ each run; only the outcome counts."""
    before = document([record(MX, "SMTP-AUTH-MATCH", "failed", message="MAIL FROM:<mailaudit-sender-0e4b@x>")])
    now = document([record(MX, "SMTP-AUTH-MATCH", "failed", message="MAIL FROM:<mailaudit-sender-77aa@x>")])
    changes = compare(before, now)
    assert changes.counts["still failing"] == 1 and changes.news == ()
    assert changes.comparable and changes.notes == ()


def test_variants_are_compared_one_by_one():
    """(server, requirement, variant) is the unit: one port newly failing is one new failure."""
    before = document([record(MX, "TLS-NO-SSL", "passed", variant=p) for p in ("25", "465", "993")])
    now = document([record(MX, "TLS-NO-SSL", "failed" if p == "993" else "passed", variant=p)
                    for p in ("25", "465", "993")])
    changes = compare(before, now)
    assert [(i.variant, i.change) for i in changes.news] == [("993", "new failure")]
    assert changes.counts["unchanged"] == 2


def test_only_this_runs_servers_are_compared():
    """A shard compared with last night's merged document sees no other server as gone."""
    before = document([record(MX, "SMTP-VRFY-EXPN", "failed"), record(OTHER, "SMTP-VRFY-EXPN", "failed")])
    now = document([record(MX, "SMTP-VRFY-EXPN", "failed")])
    changes = compare(before, now)
    assert [(i.server, i.change) for i in changes.items] == [(MX, "still failing")]
    assert changes.notes == ()


def test_items_come_most_pressing_first_with_severity_and_message():
    """New failures lead, then new errors, fixed...; each item carries its severity and message."""
    before = document([record(MX, "SMTP-A", "failed"), record(MX, "SMTP-B", "passed"), record(MX, "SMTP-C", "passed"),
                       record(MX, "SMTP-D", "failed")])
    now = document([record(MX, "SMTP-A", "passed"), record(MX, "SMTP-B", "error"),
                    record(MX, "SMTP-C", "failed", severity="critical", message="relay accepted"),
                    record(MX, "SMTP-D", "failed")])
    items = compare(before, now).items
    assert [i.change for i in items] == ["new failure", "new error", "fixed", "still failing"]
    assert (items[0].severity, items[0].message) == ("critical", "relay accepted")


@pytest.mark.parametrize(("before_kw", "now_kw", "note"), [
    ({"complete": False}, {}, "the baseline is incomplete (1 of 1 verdicts): verdicts it lacks count as new"),
    ({}, {"complete": False}, "this run is incomplete: verdicts it did not reach are listed as gone"),
    ({"policy_sha": "1111aaaa"}, {}, "the baseline ran under another policy (lab 1111aaaa; now lab 30ec021656d20a59)"),
    ({"suite_version": "0.0.9"}, {}, "the baseline ran suite version 0.0.9 (now 0.1.0)"),
    ({"intrusive": False}, {}, "the baseline ran with intrusive probes off (now on)"),
    ({"options": {"smtp_user": "a@example.test"}}, {}, "the baseline ran with other options: api_insecure,"),
])
def test_a_weaker_comparison_says_why(before_kw, now_kw, note):
    """An incomplete baseline or run, another policy, suite version or options: a note says so."""
    before = document([record(MX, "SMTP-VRFY-EXPN")], servers=[MX], **before_kw)
    now = document([record(MX, "SMTP-VRFY-EXPN")], servers=[MX], **now_kw)
    changes = compare(before, now)
    assert any(n.startswith(note) for n in changes.notes), changes.notes
    assert not changes.comparable


def test_a_server_missing_from_the_baseline_is_named():
    """Verdicts of a server the baseline did not audit are new, and a note names the server."""
    before = document([record(MX, "SMTP-VRFY-EXPN")])
    now = document([record(MX, "SMTP-VRFY-EXPN"), record(OTHER, "SMTP-VRFY-EXPN", "failed")])
    changes = compare(before, now)
    assert changes.notes == (f"the baseline did not audit {OTHER}: its verdicts are new",)
    assert [(i.server, i.change) for i in changes.news] == [(OTHER, "new failure")]
    other = compare(document([record("x.example.test", "SMTP-VRFY-EXPN")]), now)
    assert other.notes == ("the baseline audited none of this run's servers: every verdict is new",)


@pytest.mark.parametrize(("before", "now", "status", "expected"), [
    ("passed", "failed", 1, 1), ("passed", "error", 6, 6), ("passed", "error", 1, 6),
    ("failed", "failed", 1, 0), ("error", "error", 6, 0), ("failed", "passed", 0, 0),
    ("passed", "failed", 2, 2), ("passed", "passed", 3, 3), ("passed", "passed", 4, 4), ("passed", "passed", 5, 5),
])
def test_fail_on_new_exit_status(before, now, status, expected):
    """--fail-on new: 1 for a new failure, 6 for only new errors, 0 for what still fails; an
    interrupted run, internal error, usage error or empty collection keeps its status."""
    changes = compare(document([record(MX, "SMTP-X", before)]), document([record(MX, "SMTP-X", now)]))
    assert exit_status_on_new(changes, status) == expected


def test_changes_fit_the_results_schema():
    """The 'changes' field (with or without unchanged items) validates inside a results document."""
    before = document([record(MX, "SMTP-A", "passed"), record(MX, "SMTP-B", "failed")], complete=False)
    now = document([record(MX, "SMTP-A", "failed"), record(MX, "SMTP-C", "passed")])
    changes = compare(before, now, "prev.json")
    for include in (False, True):
        now["changes"] = changes.as_dict(include_unchanged=include)
        assert validate_document(now) == []
    assert now["changes"]["baseline"]["path"] == "prev.json"
    assert now["changes"]["counts"]["new failure"] == 1 and now["changes"]["comparable"] is False


def test_lines_for_a_quiet_run_are_few():
    """The terminal gets one summary line, the notes and at most `limit` change lines."""
    before = document([record(MX, f"SMTP-X{i}", "passed") for i in range(30)])
    now = document([record(MX, f"SMTP-X{i}", "failed") for i in range(30)])
    lines = change_lines(compare(before, now), limit=5)
    assert lines[0] == "changes since 2026-11-28T02:00:00Z: 30 new failure"
    assert lines[1] == "NEW FAILURE mail.example.test SMTP-X0 (high): passed -> failed"
    assert lines[-1] == "... and 25 more changes (see the results JSON, 'changes')"
    assert len(lines) == 7
    same = compare(now, now)
    assert summary_line(same) == "changes since 2026-11-28T02:00:00Z: no change; 30 still failing"


def test_lab_run_against_itself_with_one_setting_flipped():
    """The weak lab's real results with one verdict flipped give exactly that change."""
    before = lab_sample("weak")
    now = json.loads(json.dumps(before))
    flipped = next(r for r in now["results"] if r["requirement"] == "SMTP-VRFY-EXPN")
    flipped["outcome"] = "passed"
    changes = compare(before, now)
    assert [(i.requirement, i.change) for i in changes.news] == [("SMTP-VRFY-EXPN", "fixed")]
    assert changes.comparable


def test_baseline_file_is_checked_before_any_probe(tmp_path):
    """A missing, non-JSON, foreign or invalid baseline is one ConfigError line; a good one loads."""
    path = tmp_path / "prev.json"
    with pytest.raises(ConfigError, match=r"--baseline .*prev.json: cannot read"):
        load_baseline(path)
    for text, expected in (("{not json", "not JSON (line 1"), ('{"schema": "other/9"}', "schema 'other/9' is not"),
                           ('{"schema": "mailaudit-results/1"}', "not a valid results document ((document): ")):
        path.write_text(text)
        with pytest.raises(ConfigError) as info:
            load_baseline(path)
        assert expected in str(info.value)
    path.write_text(json.dumps(lab_sample("hardened")))
    assert load_baseline(path)["schema"] == "mailaudit-results/1"
