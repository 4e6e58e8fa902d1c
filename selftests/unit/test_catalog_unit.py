"""The catalog holds every requirement of REQUIREMENTS.md, and tests name only known IDs."""

import ast
import re
from pathlib import Path

import pytest
import yaml

from mailaudit.catalog import SEVERITIES, load_catalog
from mailaudit.errors import ConfigError
from mailaudit.results import catalog_fields

REPO = Path(__file__).resolve().parents[2]
ID_PATTERN = re.compile(r"^(SMTP|TLS|DNS|API|XCHK)-[A-Z0-9-]+$")


def _marked_ids() -> dict[str, list[str]]:
    """Requirement IDs named in @pytest.mark.requirement(...) across the tests_* folders."""
    found: dict[str, list[str]] = {}
    for path in REPO.glob("tests_*/test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "requirement"
                    and node.args and isinstance(node.args[0], ast.Constant)):
                found.setdefault(node.args[0].value, []).append(str(path.relative_to(REPO)))
    return found


def test_catalog_entries_are_complete():
    """Every entry has a well-formed ID, a title, a known severity, what is expected, why it matters,
    sources and a remediation (SmarterMail steps or a generic fix)."""
    catalog = load_catalog()
    assert len(catalog) >= 57
    for req in catalog.values():
        assert ID_PATTERN.match(req.id)
        assert req.title and req.sources and req.remediation and req.expected and req.why
        assert req.fix_smartermail or req.fix_generic
        assert req.severity in SEVERITIES


def test_every_requirement_says_how_to_fix_it_on_any_server():
    """Every entry has a generic fix; every SMTP, TLS and API entry also names the SmarterMail steps
    (DNS fixes live at the DNS host, so they may have none)."""
    for req in load_catalog().values():
        assert req.fix_generic, req.id
        if not req.id.startswith("DNS-"):
            assert req.fix_smartermail, req.id


def test_records_carry_the_catalog_words():
    """catalog_fields gives a record the title, family, expected, why, sources and both remediation
    parts, and the one-line remediation names both."""
    req = load_catalog()["SMTP-OPEN-RELAY"]
    fields = catalog_fields(req)
    assert fields["family"] == "SMTP" and fields["title"] == req.title and fields["why"] == req.why
    assert fields["expected"] == req.expected and fields["sources"] == list(req.sources)
    assert fields["remediation_smartermail"].startswith("Settings > Protocols > SMTP In > Allow Relay = Nobody")
    assert "smtpd_relay_restrictions" in fields["remediation_generic"]
    assert fields["remediation"].startswith("SmarterMail: Settings")
    assert "Generic fix: Relay only" in fields["remediation"]


@pytest.mark.parametrize(("entry", "complaint"), [
    ({"severity": "severe"}, "severity must be one of"),
    ({"why": ""}, "why is required"),
    ({"remediation": "a plain string"}, "remediation must be a mapping"),
    ({"remediation": {"smartermail": "", "generic": ""}}, "needs a smartermail or a generic step"),
    ({"colour": "red"}, "unknown field(s) colour"),
    ({"sources": []}, "sources is required"),
])
def test_malformed_catalog_entries_are_refused_with_the_id(tmp_path, entry, complaint):
    """A malformed entry stops loading with a ConfigError naming the ID and what is wrong."""
    good = {"title": "t", "severity": "high", "expected": "e", "why": "w", "sources": ["RFC 1"],
            "remediation": {"smartermail": "s", "generic": "g"}}
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump({"SMTP-X": good | entry}))
    with pytest.raises(ConfigError, match=re.escape(complaint)) as caught:
        load_catalog.__wrapped__(path)
    assert "SMTP-X" in str(caught.value)


def test_catalog_matches_the_requirements_document():
    """Every ID of the shared REQUIREMENTS.md (when present) is in the catalog."""
    doc = REPO.parent / "shared" / "REQUIREMENTS.md"
    if not doc.exists():
        return
    ids = set(re.findall(r"^\| ((?:SMTP|TLS|DNS|API|XCHK)-[A-Z0-9-]+) \|", doc.read_text(), re.M))
    assert ids and ids <= set(load_catalog())


def test_tests_name_only_known_requirement_ids():
    """A test marked with an ID the catalog does not know fails this self-test."""
    unknown = {rid: where for rid, where in _marked_ids().items() if rid not in load_catalog()}
    assert not unknown, f"unknown requirement IDs in tests: {unknown}"
