"""``python -m mailaudit.report RESULTS.json [-o OUT.html] [--self-contained]``: render the
auditor's report from a results file (evidence files are found beside it)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mailaudit.report import default_report_path, write_audit_report
from mailaudit.results import SCHEMA


def main(argv: list[str] | None = None) -> int:
    """Render one report; 0 on success, 2 with one line on a bad input file."""
    parser = argparse.ArgumentParser(prog="python -m mailaudit.report", description=__doc__)
    parser.add_argument("results", type=Path, help="a results JSON file (schema mailaudit-results/1)")
    parser.add_argument("-o", "--output", type=Path,
                        help="the HTML file (default: <results stem>-audit.html beside it)")
    parser.add_argument("--self-contained", action="store_true",
                        help="one file: small evidence inline, large evidence named but not linked")
    args = parser.parse_args(argv)
    try:
        document = json.loads(args.results.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"mailaudit.report: cannot read {args.results}: {exc}", file=sys.stderr)
        return 2
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        print(f"mailaudit.report: {args.results} is not a {SCHEMA} document", file=sys.stderr)
        return 2
    output = args.output or default_report_path(args.results)
    write_audit_report(document, output, args.results.resolve().parent, self_contained=args.self_contained)
    print(f"mailaudit.report: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
