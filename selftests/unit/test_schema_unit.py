"""Offline tests of the results JSON Schema: real lab documents pass, broken ones are named."""

import copy

import pytest
from jsonschema import Draft202012Validator

from mailaudit.schema import load_schema, validate_document
from selftests.unit.results_fakes import document, lab_sample, record

SERVER = "mail.hardened.test"


def test_schema_file_is_a_valid_draft_2020_12_schema():
    """The shipped schema is itself valid JSON Schema (draft 2020-12) and names the version it checks."""
    schema = load_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["properties"]["schema"] == {"const": "mailaudit-results/1"}


@pytest.mark.parametrize("name", ["weak", "hardened"])
def test_real_lab_documents_are_valid(name):
    """The reporter's output for both lab servers (trimmed copies) validates without a problem."""
    assert validate_document(lab_sample(name)) == []


def test_document_built_by_results_module_is_valid_with_every_outcome():
    """A document built by results.build_document, holding all six outcomes, is valid."""
    outcomes = ["passed", "failed", "error", "skipped", "inconclusive", "waived"]
    doc = document([record(SERVER, f"SMTP-X{i}", outcome) for i, outcome in enumerate(outcomes)])
    assert validate_document(doc) == []


@pytest.mark.parametrize(("breakage", "expected"), [
    (lambda d: d["results"][0].update(outcome="bogus"), "results[0].outcome: 'bogus' is not one of"),
    (lambda d: d["results"][0].update(severity="urgent"), "results[0].severity: 'urgent' is not one of"),
    (lambda d: d["results"][0].pop("message"), "results[0]: 'message' is a required property"),
    (lambda d: d.update(schema="mailaudit-results/2"), "schema: 'mailaudit-results/1' was expected"),
    (lambda d: d["run"].pop("started"), "run: 'started' is a required property"),
    (lambda d: d["run"].update(started="yesterday"), "run.started: 'yesterday' does not match"),
    (lambda d: d["servers"][0].update(verdict="fine"), "servers[0].verdict: 'fine' is not one of"),
    (lambda d: d["servers"][0]["requirements"].update(passed=-1), "servers[0].requirements.passed: -1"),
    (lambda d: d.pop("complete"), "(document): 'complete' is a required property"),
    (lambda d: d["results"][0]["evidence"].append({"name": "x"}), "results[0].evidence[0]: 'file' is a required"),
])
def test_broken_documents_are_named_by_path(breakage, expected):
    """Each way of breaking a document gives one line that names where (path) and what."""
    doc = document([record(SERVER, "SMTP-VRFY-EXPN", "failed")])
    breakage(doc)
    problems = validate_document(doc)
    assert any(p.startswith(expected) for p in problems), problems


def test_records_and_run_may_grow_new_fields():
    """Records, run metadata and the document may carry properties the schema does not name."""
    doc = document([record(SERVER, "SMTP-VRFY-EXPN") | {"new_field": {"any": [1, 2]}}])
    doc["run"]["inventory"] = {"path": "fleet.yaml"}
    doc["something_new"] = True
    assert validate_document(doc) == []


def test_changes_and_waivers_fields_are_checked_when_present():
    """Top-level 'changes' and 'waivers' validate in their documented form; a wrong change name fails."""
    doc = document([record(SERVER, "SMTP-VRFY-EXPN", "failed")])
    doc["changes"] = {"baseline": {"path": "prev.json", "started": "2026-11-27T02:00:00Z", "complete": True,
                                   "policy": {"name": "lab", "sha256": "ab"}},
                      "comparable": True, "notes": [], "counts": {"new failure": 1},
                      "items": [{"server": SERVER, "requirement": "SMTP-VRFY-EXPN", "variant": "",
                                 "change": "new failure", "outcome": "failed", "previous": "passed"}]}
    doc["waivers"] = {"expired": ["waiver for X on Y expired on 2026-01-01: the failure is back"],
                      "unused": [{"message": "waiver for Z matched no verdict", "waiver": {}}]}
    assert validate_document(doc) == []
    broken = copy.deepcopy(doc)
    broken["changes"]["items"][0]["change"] = "worse"
    assert any(p.startswith("changes.items[0].change") for p in validate_document(broken))
    broken = copy.deepcopy(doc)
    broken["waivers"] = {"expired": []}
    assert validate_document(broken) == ["waivers: 'unused' is a required property"]


def test_consistency_checks_beyond_the_schema():
    """A record of a server without a summary, or two 'complete' flags that disagree, are named."""
    doc = document([record(SERVER, "SMTP-VRFY-EXPN")])
    doc["results"].append(record("mail.other.test", "SMTP-VRFY-EXPN"))
    assert validate_document(doc) == ["results[1].server: 'mail.other.test' has no summary in servers"]
    doc = document([record(SERVER, "SMTP-VRFY-EXPN")])
    doc["run"]["complete"] = False
    assert validate_document(doc) == ["complete: differs from run.complete"]


def test_many_problems_are_cut_to_a_readable_list():
    """Thousands of broken records give at most the limit of lines plus one saying how many more."""
    doc = document([record(SERVER, f"SMTP-X{i}") for i in range(50)])
    for rec in doc["results"]:
        rec["outcome"] = "bogus"
    problems = validate_document(doc, limit=5)
    assert len(problems) == 6
    assert problems[-1] == "... and 45 more problems"
