"""The auditor's report: one static HTML page per results document, readable without JavaScript.

``write_audit_report(document, path, evidence_base)`` writes it. The page says per server whether
it complies with the named policy, counts requirements by outcome and failures by severity, ranks
the failed requirements (severity, then family) with why they matter, expected vs observed, the
remediation (SmarterMail's web interface and the generic fix), sources, the policy leaves that
decided and the evidence; then what could not be checked (grouped by cause), inconclusive,
waived, skipped and passed requirements. Evidence files stay beside the results JSON and are
linked relatively; small pieces are shown inline, each once.

``python -m mailaudit.report RESULTS.json [-o OUT.html] [--self-contained]`` renders a report
from a results file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mailaudit.report.model import build_view
from mailaudit.report.page import render

__all__ = ["default_report_path", "write_audit_report"]


def write_audit_report(document: dict[str, Any], path: Path, evidence_base: Path,
                       self_contained: bool = False) -> None:
    """Write the auditor's report for one results document to ``path``.

    ``evidence_base`` is the folder the records' evidence ``file`` entries are relative to (the
    results JSON's folder). Links to evidence files are relative to ``path``'s folder. With
    ``self_contained`` the page needs no other file: small evidence is inline (as always) and
    large evidence is named but not linked (the page says so)."""
    path = Path(path)
    view = build_view(document, Path(evidence_base), path.resolve().parent, self_contained)
    html = render(view)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(html, encoding="utf-8")
    os.replace(temporary, path)


def default_report_path(results_json: Path) -> Path:
    """Where the report of a results file goes by default: ``<stem>-audit.html`` beside it."""
    return results_json.with_name(results_json.stem + "-audit.html")
