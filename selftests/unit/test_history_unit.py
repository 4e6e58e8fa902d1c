"""Offline tests of --history: each run kept by start time (bounded), and a static trend page."""

import datetime as dt
import json
import re
from html.parser import HTMLParser

import pytest

from mailaudit.changes import load_baseline
from mailaudit.history import latest_run, load_runs, prune, render_trend_page, run_files, update_history
from mailaudit.schema import validate_document
from selftests.unit.results_fakes import document, lab_sample, record

MX = "mail.example.test"
NOW = dt.datetime(2026, 12, 1, 6, 0, tzinfo=dt.UTC)
HOSTILE = "<script>alert(1)</script>.example.test"


def _night(day, failed=(), errors=0, complete=True, servers=(MX,)):
    records = []
    for server in servers:
        records += [record(server, f"SMTP-F{i}", "failed", severity=s) for i, s in enumerate(failed)]
        records += [record(server, f"API-E{i}", "error") for i in range(errors)]
        records.append(record(server, "TLS-NO-SSL", "passed"))
    return document(records, servers=list(servers), complete=complete, started=f"2026-11-{day:02d}T02:00:00Z")


class _Text(HTMLParser):
    """Collects the page's text and tags, as a browser's DOM would hold them."""

    def __init__(self):
        super().__init__()
        self.text, self.tags = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.text.append(data)


def test_a_run_is_kept_by_start_time_slimmed_and_usable_as_baseline(tmp_path):
    """The run file is named by the run's start, drops evidence and catalog texts, stays a valid
    results document and loads as a --baseline."""
    doc = lab_sample("weak")
    update = update_history(doc, tmp_path, keep=5, now=NOW)
    assert update.run_file == tmp_path / "runs" / "20261129T190951Z.json"
    kept = json.loads(update.run_file.read_text())
    assert validate_document(kept) == []
    assert len(kept["results"]) == len(doc["results"])
    assert not any({"evidence", "remediation", "sources", "title"} & r.keys() for r in kept["results"])
    assert [r["outcome"] for r in kept["results"]] == [r["outcome"] for r in doc["results"]]
    assert load_baseline(update.run_file)["schema"] == "mailaudit-results/1"
    assert update.index == tmp_path / "index.html" and update.index.is_file()


def test_history_is_bounded_and_touches_only_its_own_files(tmp_path):
    """At most `keep` runs stay (the oldest go first); other files in the folder are left alone."""
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "notes.txt").write_text("mine")
    for day in range(1, 8):
        update = update_history(_night(day, failed=["high"]), tmp_path, keep=3, now=NOW)
    assert [p.name for p in run_files(tmp_path)] == ["20261105T020000Z.json", "20261106T020000Z.json",
                                                     "20261107T020000Z.json"]
    assert [p.name for p in update.removed] == ["20261104T020000Z.json"]
    assert (tmp_path / "runs" / "notes.txt").read_text() == "mine"
    with pytest.raises(ValueError):
        prune(tmp_path, 0)


def test_runs_started_in_the_same_second_are_all_kept_in_order(tmp_path):
    """Two runs with one start time (two shards) get distinct files, listed in the order written."""
    first = update_history(_night(3), tmp_path, now=NOW).run_file
    second = update_history(_night(3, servers=("mx2.example.test",)), tmp_path, now=NOW).run_file
    assert (first.name, second.name) == ("20261103T020000Z.json", "20261103T020000Z-2.json")
    assert run_files(tmp_path) == [first, second]


def test_latest_run_is_the_newest_complete_one(tmp_path):
    """latest_run gives the newest finished run (an interrupted one only when asked)."""
    assert latest_run(tmp_path) is None
    update_history(_night(1), tmp_path, now=NOW)
    update_history(_night(2, complete=False), tmp_path, now=NOW)
    assert latest_run(tmp_path).name == "20261101T020000Z.json"
    assert latest_run(tmp_path, complete_only=False).name == "20261102T020000Z.json"


def test_trend_page_charts_failures_by_severity_per_server(tmp_path):
    """Per server, one SVG: a stacked bar per run with one rectangle per severity that failed, and
    the error line; the table lists each run with its counts."""
    update_history(_night(1, failed=["critical", "high", "high"], errors=2), tmp_path, now=NOW)
    update_history(_night(2, failed=["high", "low"], complete=False), tmp_path, now=NOW)
    update_history(_night(3, failed=[]), tmp_path, now=NOW)
    page = (tmp_path / "index.html").read_text()
    assert page.count("<svg ") == 1 and "<script" not in page
    bars = re.findall(r'<g opacity="([0-9.]+)"><title>([^<]*)</title>((?:<rect [^>]*/>)*)</g>', page)
    assert [(opacity, rects.count("<rect")) for opacity, _, rects in bars] == [("1", 2), ("0.45", 2), ("1", 0)]
    assert bars[0][1] == "2026-11-01 02:00: not compliant; failed: 1 critical, 2 high, 0 medium, 0 low; " \
                         "2 error, 0 inconclusive"
    assert "(did not finish)" in bars[1][1]
    assert 'stroke-dasharray="6 3"' in page  # the error line
    assert '<a href="runs/20261103T020000Z.json">' in page
    assert "latest run 2026-11-03 02:00: <span class=\"v-compliant\">compliant</span>, 0 of 1 requirements failed" \
        in page


def test_server_supplied_text_is_escaped_on_the_page(tmp_path):
    """A hostile server name shows as text in the page's DOM, never as markup."""
    update_history(_night(1, failed=["high"], servers=(HOSTILE, MX)), tmp_path, now=NOW)
    parser = _Text()
    parser.feed((tmp_path / "index.html").read_text())
    assert "script" not in parser.tags
    assert HOSTILE in "".join(parser.text)


def test_unreadable_run_files_are_named_not_fatal(tmp_path):
    """A damaged file in the history is left out and named on the page; the others still chart."""
    update_history(_night(1, failed=["high"]), tmp_path, now=NOW)
    (tmp_path / "runs" / "20261102T020000Z.json").write_text("{broken")
    (tmp_path / "runs" / "20261102T030000Z.json").write_text('{"run": {"started": 5}}')
    update = update_history(_night(3), tmp_path, now=NOW)
    assert update.unreadable == ("20261102T020000Z.json", "20261102T030000Z.json")
    runs, _ = load_runs(tmp_path)
    assert [run.started for run in runs] == ["2026-11-01T02:00:00Z", "2026-11-03T02:00:00Z"]
    assert "Not readable as results, left out: 20261102T020000Z.json, 20261102T030000Z.json" in \
        update.index.read_text()


def test_empty_history_page_says_so():
    """With no run yet the page says so instead of drawing an empty chart."""
    page = render_trend_page([], generated=NOW)
    assert "No run recorded yet." in page and "<svg" not in page
