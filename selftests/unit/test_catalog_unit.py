"""The catalog holds every requirement of REQUIREMENTS.md, and tests name only known IDs."""

import ast
import re
from pathlib import Path

from mailaudit.catalog import SEVERITIES, load_catalog

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
    """Every entry has a well-formed ID, a title, a known severity, sources and a remediation."""
    catalog = load_catalog()
    assert len(catalog) >= 57
    for req in catalog.values():
        assert ID_PATTERN.match(req.id)
        assert req.title and req.sources and req.remediation
        assert req.severity in SEVERITIES


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
