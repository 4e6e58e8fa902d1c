"""Offline tests of merging shards: one document like one run's, evidence copied, mismatches refused."""

import json
import re
from pathlib import Path

import pytest

from mailaudit import merge
from mailaudit.errors import ConfigError
from mailaudit.evidence import EvidenceStore
from mailaudit.schema import validate_document
from selftests.unit.results_fakes import document, record

WEAK, HARDENED = "mail.weak.test", "mail.hardened.test"
SHARED_TRANSCRIPT = "S: 220 mail ESMTP\nC: QUIT\n"


def _records(folder: Path, stem: str, server: str, outcomes: dict[str, str]) -> list[dict]:
    """Records with evidence stored the way the suite stores it (content-named files)."""
    store = EvidenceStore(folder / f"{stem}-evidence", folder)
    records = []
    for requirement, outcome in outcomes.items():
        own = store.add("transcript", f"{server} {requirement}: " + "x" * 3000)
        shared = store.add("banner", SHARED_TRANSCRIPT)
        records.append(record(server, requirement, outcome, evidence=(own.as_dict(), shared.as_dict())))
    return records


WEAK_OUTCOMES = {"SMTP-OPEN-RELAY": "failed", "TLS-NO-SSL": "passed", "API-VERSION": "error"}
HARDENED_OUTCOMES = {"SMTP-OPEN-RELAY": "passed", "TLS-NO-SSL": "passed", "API-VERSION": "inconclusive"}


def _shard(folder: Path, stem: str, server: str, outcomes: dict[str, str], **run) -> Path:
    doc = document(_records(folder, stem, server, outcomes), **run)
    path = folder / f"{stem}.json"
    path.write_text(json.dumps(doc))
    return path


def _two_shards(tmp_path: Path, **second_run) -> list[Path]:
    first = _shard(tmp_path, "shard1", WEAK, WEAK_OUTCOMES, started="2026-11-28T02:00:00Z",
                   finished="2026-11-28T02:05:00Z")
    run = {"started": "2026-11-28T02:01:00Z", "finished": "2026-11-28T02:09:30Z", **second_run}
    return [first, _shard(tmp_path, "shard2", HARDENED, HARDENED_OUTCOMES, **run)]


def _without_evidence_folder(records):
    return [{**r, "evidence": [{**e, "file": e["file"].split("/", 1)[1]} for e in r["evidence"]]} for r in records]


@pytest.fixture(autouse=True)
def _no_report_module(monkeypatch):
    """Keep merge tests independent of the auditor's report (tested with a fake where it matters)."""
    monkeypatch.setattr(merge, "write_audit_report", lambda document, path, evidence_base: None)


def test_two_shards_merge_into_the_same_records_as_one_run(tmp_path):
    """Records and per-server summaries of the merge equal those of one run over both servers."""
    paths = _two_shards(tmp_path)
    result = merge.merge_files(paths, tmp_path / "out" / "merged.json")
    single_dir = tmp_path / "single"
    one_run = document(_records(single_dir, "one", WEAK, WEAK_OUTCOMES)
                       + _records(single_dir, "one", HARDENED, HARDENED_OUTCOMES))
    merged = json.loads((tmp_path / "out" / "merged.json").read_text())
    assert merged == result.document
    assert validate_document(merged) == []
    assert _without_evidence_folder(merged["results"]) == _without_evidence_folder(one_run["results"])
    assert merged["servers"] == one_run["servers"]


def test_run_metadata_is_combined(tmp_path):
    """Earliest start, latest end, targets united, sums, complete only if every shard is, a shards list."""
    paths = _two_shards(tmp_path, complete=False)
    merged = merge.merge_files(paths, tmp_path / "merged.json").document
    run = merged["run"]
    assert (run["started"], run["finished"], run["duration_s"]) == ("2026-11-28T02:00:00Z", "2026-11-28T02:09:30Z",
                                                                    570.0)
    assert [t["server"] for t in run["targets"]] == [WEAK, HARDENED]
    assert (run["collected"], run["recorded"]) == (6, 6)
    assert merged["complete"] is False and run["complete"] is False
    assert run["interrupted"] == "shard2.json: interrupted"
    assert run["exit_status"] == 2 == merge.exit_status(merged)
    assert run["outputs"] == {"results_json": "merged.json", "evidence_dir": "merged-evidence", "html": None,
                              "audit_report": "merged-audit.html"}
    assert [(s["file"], s["servers"], s["complete"], s["records"]) for s in merged["shards"]] == [
        ("shard1.json", [WEAK], True, 3), ("shard2.json", [HARDENED], False, 3)]


def test_evidence_files_are_copied_once_and_paths_rewritten(tmp_path):
    """Every evidence path of the merge opens a file in the merged folder with the shard's text."""
    paths = _two_shards(tmp_path)
    output = tmp_path / "out" / "merged.json"
    merged = merge.merge_files(paths, output).document
    files = {e["file"] for r in merged["results"] for e in r["evidence"]}
    assert all(f.startswith("merged-evidence/") for f in files)
    assert len(files) == 7  # six own transcripts and one banner both shards share
    for piece in (e for r in merged["results"] for e in r["evidence"]):
        assert len((output.parent / piece["file"]).read_text()) == piece["chars"]


@pytest.mark.parametrize(("change", "expected"), [
    ({"policy_sha": "ffff0000"}, "policy ffff0000 differs from"),
    ({"suite_version": "9.9"}, "suite version 9.9 differs"),
    ({"intrusive": False}, "intrusive setting False differs"),
    ({"options": {"api_insecure": True}}, "option api_insecure (True vs False) differs"),
])
def test_shards_of_different_runs_are_refused_in_one_line(tmp_path, change, expected):
    """Another policy hash, suite version, intrusive setting or option: refused, nothing written."""
    paths = _two_shards(tmp_path, **change)
    with pytest.raises(ConfigError) as info:
        merge.merge_files(paths, tmp_path / "merged.json")
    assert expected in str(info.value) and "merge shards of one run only" in str(info.value)
    assert not (tmp_path / "merged.json").exists()


def test_other_schema_server_twice_and_bad_files_are_refused(tmp_path):
    """A document of another schema, a server in two shards, the output among the inputs, a
    missing or non-JSON shard: each one line."""
    paths = _two_shards(tmp_path)
    other = json.loads(paths[1].read_text()) | {"schema": "mailaudit-results/2"}
    (tmp_path / "other.json").write_text(json.dumps(other))
    cases = [
        ([paths[0], tmp_path / "other.json"], "schema 'mailaudit-results/2' is not 'mailaudit-results/1'"),
        ([paths[0], paths[0]], "a shard file is given twice"),
        ([paths[0], tmp_path / "missing.json"], "missing.json: cannot read"),
        ([paths[0], paths[1]], "the output must not be one of the shards"),
    ]
    for inputs, expected in cases:
        output = paths[1] if "output" in expected else tmp_path / "merged.json"
        with pytest.raises(ConfigError, match=re.escape(expected)):
            merge.merge_files(inputs, output)
    copy = _shard(tmp_path, "copy", WEAK, {"DNS-MX": "passed"})
    with pytest.raises(ConfigError, match=f"server {WEAK} is also in .*shard1.json"):
        merge.merge_files([paths[0], copy], tmp_path / "merged.json")


def test_evidence_paths_outside_the_shard_or_missing_files_are_refused(tmp_path):
    """A record pointing outside its shard's folder, or at a file that is not there, stops the merge
    before anything is written."""
    paths = _two_shards(tmp_path)
    doc = json.loads(paths[1].read_text())
    doc["results"][0]["evidence"][0]["file"] = "../../etc/passwd"
    paths[1].write_text(json.dumps(doc))
    expected = "evidence path '../../etc/passwd' is not <folder>/<content hash>.txt"
    with pytest.raises(ConfigError, match=re.escape(expected)):
        merge.merge_files(paths, tmp_path / "merged.json")
    doc["results"][0]["evidence"][0]["file"] = "shard2-evidence/" + "0" * 20 + ".txt"
    paths[1].write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match=re.escape("is missing (keep each shard's evidence folder beside its JSON)")):
        merge.merge_files(paths, tmp_path / "merged.json")
    assert not (tmp_path / "merged-evidence").exists() and not (tmp_path / "merged.json").exists()


def test_waiver_notes_merge_expired_all_unused_only_if_no_shard_used_it(tmp_path):
    """Expired waivers of any shard are listed; a waiver counts as unused only if every shard left it unused."""
    a = {"requirement": "TLS-NO-SSL", "server": "*", "variant": "*", "expires": "2027-01-01"}
    b = {"requirement": "DNS-MX", "server": "*", "variant": "*", "expires": "2027-01-01"}
    first = {"expired": ["waiver for X on mail.weak.test expired on 2026-01-01: the failure is back"],
             "unused": [{"message": "a unused here", "waiver": a}, {"message": "b unused", "waiver": b}]}
    second = {"expired": [], "unused": [{"message": "a unused there too", "waiver": a}]}
    merged = merge._merged_waivers([{"waivers": first}, {"waivers": second}])
    assert merged == {"expired": first["expired"], "unused": [{"message": "a unused here", "waiver": a}]}
    assert merge._merged_waivers([{"waivers": first}, {}])["unused"] == []
    assert merge._merged_waivers([{}, {}]) is None


def test_cli_merges_compares_with_a_baseline_and_exits_by_the_suites_codes(tmp_path, capsys):
    """`python -m mailaudit.merge` writes the merge, prints the changes and per-server lines; exits 1
    on findings, with --fail-on new 0 when nothing is new; usage errors exit 4."""
    paths = _two_shards(tmp_path)
    output = tmp_path / "merged.json"
    assert merge.main([str(p) for p in paths] + ["-o", str(output)]) == 1
    out = capsys.readouterr().out
    assert f"mailaudit {WEAK}: NOT COMPLIANT" in out and f"merged 2 shards, 6 verdicts: {output}" in out
    baseline = tmp_path / "night1.json"
    output.rename(baseline)
    history = tmp_path / "history"
    args = [str(p) for p in paths] + ["-o", str(output), "--baseline", str(baseline), "--fail-on", "new",
                                      "--history", str(history), "-q"]
    assert merge.main(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "changes since 2026-11-28T02:00:00Z: no change; 1 still failing, 1 still error, 4 unchanged"
    assert len(out) == 3  # the changes line and one line per server
    assert json.loads(output.read_text())["changes"]["counts"]["still failing"] == 1
    assert (history / "index.html").is_file()
    assert merge.main([str(p) for p in paths] + ["-o", str(output), "--history", str(history), "--fail-on", "new"]) == 0
    assert capsys.readouterr().out.startswith("changes since 2026-11-28T02:00:00Z: no change;")
    first_night = [*map(str, paths), "-o", str(output), "--history", str(tmp_path / "empty"), "--fail-on", "new"]
    assert merge.main(first_night) == 1  # no earlier run: every finding is new
    with pytest.raises(SystemExit) as info:
        merge.main([str(paths[0]), "-o", str(output), "--fail-on", "new"])
    assert info.value.code == 4 and "--fail-on new needs --baseline" in capsys.readouterr().err
    assert merge.main([str(paths[0]), str(tmp_path / "nope.json"), "-o", str(output)]) == 4
    assert "nope.json: cannot read" in capsys.readouterr().err


def test_the_auditors_report_is_rendered_from_the_merged_document(tmp_path, monkeypatch):
    """write_audit_report gets the merged document, the report path (default <output stem>-audit.html)
    and the folder evidence paths are relative to; write_report=False writes none."""
    calls = []
    monkeypatch.setattr(merge, "write_audit_report",
                        lambda document, path, evidence_base: calls.append((document, path, evidence_base)))
    output = tmp_path / "out" / "merged.json"
    result = merge.merge_files(_two_shards(tmp_path), output)
    assert calls == [(result.document, output.with_name("merged-audit.html"), output.parent)]
    assert result.document["run"]["outputs"]["audit_report"] == "merged-audit.html"
    merge.merge_files(_two_shards(tmp_path), output, write_report=False)
    assert len(calls) == 1


@pytest.mark.parametrize(("outcomes", "statuses", "expected"), [
    (["passed"], [0, 0], 0), (["passed", "failed"], [1, 0], 1), (["error", "passed"], [6, 0], 6),
    (["inconclusive"], [6], 6), (["failed"], [2, 1], 2), (["passed"], [3, 0], 3),
])
def test_merged_exit_status(outcomes, statuses, expected):
    """Internal error 3 first, then interrupted 2, findings 1, could not decide 6, else 0."""
    doc = {"results": [record(WEAK, f"SMTP-X{i}", o) for i, o in enumerate(outcomes)],
           "shards": [{"exit_status": s} for s in statuses], "run": {}}
    assert merge.exit_status(doc) == expected


def test_shards_that_name_their_place_are_checked_for_completeness(tmp_path):
    """Shards saying "K/N": a missing one makes the merge incomplete (exit 2, named); two splits or
    one place given twice are refused."""
    first = _shard(tmp_path, "shard1", WEAK, WEAK_OUTCOMES, shard="1/3")
    second = _shard(tmp_path, "shard2", HARDENED, HARDENED_OUTCOMES, shard="2/3")
    merged = merge.merge_files([first, second], tmp_path / "merged.json").document
    assert merged["complete"] is False and merged["run"]["missing_shards"] == ["3/3"]
    assert merged["run"]["interrupted"] == "shard 3/3 missing: its servers were not audited"
    assert merge.exit_status(merged) == 2 and validate_document(merged) == []
    assert [s["shard"] for s in merged["shards"]] == ["1/3", "2/3"]
    other = _shard(tmp_path, "other", HARDENED, HARDENED_OUTCOMES, shard="2/4")
    with pytest.raises(ConfigError, match=re.escape("shards of different splits (1/3, 2/4)")):
        merge.merge_files([first, other], tmp_path / "merged.json")
    twice = _shard(tmp_path, "twice", HARDENED, HARDENED_OUTCOMES, shard="1/3")
    with pytest.raises(ConfigError, match=re.escape("shard 1/3 is also")):
        merge.merge_files([first, twice], tmp_path / "merged.json")
