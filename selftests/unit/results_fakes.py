"""Small results documents for the offline tests of changes, history, merge and schema.

Documents are built with ``mailaudit.results.build_document``, as the reporter builds them, from
records and run metadata shaped like the reporter's. ``data/results-*-lab.json`` are trimmed copies
of real lab runs (all run metadata and summaries; one record per requirement and outcome).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mailaudit.results import build_document

DATA = Path(__file__).with_name("data")
POLICY_SHA = "30ec021656d20a59"


def lab_sample(name: str) -> dict[str, Any]:
    """A trimmed results document of a real lab run ("weak" or "hardened")."""
    return json.loads((DATA / f"results-{name}-lab.json").read_text(encoding="utf-8"))


def record(server: str, requirement: str, outcome: str = "passed", variant: str = "", severity: str = "high",
           message: str = "", evidence: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    """One results record with the reporter's fields."""
    return {"requirement": requirement, "server": server, "variant": variant, "outcome": outcome,
            "severity": severity, "message": message or f"{requirement} {outcome} on {server}",
            "nodeid": f"tests_x/test_x.py::test_x[{server}-{variant}]", "title": f"title of {requirement}",
            "family": requirement.split("-", 1)[0], "sources": ["guide"], "remediation": "fix it",
            "evidence": list(evidence), "policy": [], "basis": "", "internal_error": False}


def run_metadata(servers: list[str], started: str = "2026-11-28T02:00:00Z", finished: str | None = None,
                 complete: bool = True, policy_sha: str = POLICY_SHA, **changes: Any) -> dict[str, Any]:
    """Run metadata shaped like the reporter's ``run``."""
    run = {
        "suite_version": "0.1.0", "started": started, "finished": finished or started.replace("02:00", "02:01"),
        "duration_s": 60.0, "policy": {"name": "lab", "path": "lab/dns/lab-policy.yaml", "sha256": policy_sha},
        "targets": [{"server": s, "ip": "127.0.0.10", "domain": s.split(".", 1)[1], "api_url": None}
                    for s in servers],
        "resolver": "127.0.0.54:53", "intrusive": True,
        "options": {"api_insecure": False, "smtp_user": None, "dkim_selectors": ["lab"], "tls_ports": None},
        "collected": 0, "recorded": 0, "complete": complete, "interrupted": None if complete else "interrupted",
        "exit_status": 1 if complete else 2,
        "outputs": {"results_json": "results.json", "evidence_dir": "results-evidence", "html": None},
    }
    run.update(changes)
    return run


def document(records: list[dict[str, Any]], servers: list[str] | None = None, complete: bool = True,
             **run_changes: Any) -> dict[str, Any]:
    """A whole results document over ``records`` (servers: those of the records, in order)."""
    servers = servers or list(dict.fromkeys(r["server"] for r in records))
    run = run_metadata(servers, complete=complete, **run_changes)
    run["collected"] = run["recorded"] = len(records)
    return build_document(run, records, complete, servers)
