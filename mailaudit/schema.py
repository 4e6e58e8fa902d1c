"""The JSON Schema of the results document (``mailaudit/schema/results.schema.json``) and a checker.

The schema is strict where readers depend on it (the schema version, required fields, the names of
outcomes, severities, verdicts and changes) and open where documents grow: records, run metadata
and summaries may carry more properties than it names. :func:`validate_document` adds the few
checks a JSON Schema cannot express (a record's server must have a summary; ``complete`` agrees
with ``run.complete``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

SCHEMA_FILE = Path(__file__).with_name("schema") / "results.schema.json"
MAX_ERRORS = 20  # a broken document can have thousands; the first ones say enough


@cache
def load_schema() -> dict[str, Any]:
    """The results document's JSON Schema (draft 2020-12), read once."""
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


@cache
def _validator() -> Draft202012Validator:
    schema = load_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def validate_document(document: Any, limit: int = MAX_ERRORS) -> list[str]:
    """Every way ``document`` breaks the results schema, one line each (``results[3].outcome: ...``),
    in document order and at most ``limit`` of them (then one line saying how many more); an empty
    list for a valid document."""
    errors = sorted(_validator().iter_errors(document), key=lambda e: [str(p) for p in e.absolute_path])
    lines = [_line(error) for error in errors]
    if not lines and isinstance(document, Mapping):
        lines = _consistency(document)
    if len(lines) > limit:
        lines = [*lines[:limit], f"... and {len(lines) - limit} more problems"]
    return lines


def _line(error: ValidationError) -> str:
    """``path: message`` with the message cut to one line of reasonable length."""
    where = _path(error.absolute_path) or "(document)"
    message = error.message.splitlines()[0] if error.message else "invalid"
    if len(message) > 200:
        message = message[:200] + "…"
    return f"{where}: {message}"


def _path(parts: Any) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _consistency(document: Mapping[str, Any]) -> list[str]:
    """What the schema cannot say: records belong to summarised servers; the two ``complete``
    flags agree; no server is summarised twice."""
    problems = []
    if document["complete"] != document["run"]["complete"]:
        problems.append("complete: differs from run.complete")
    names = [s["server"] for s in document["servers"]]
    doubled = sorted({n for n in names if names.count(n) > 1})
    if doubled:
        problems.append(f"servers: {doubled[0]!r} is summarised more than once")
    known = set(names)
    for index, record in enumerate(document["results"]):
        if record["server"] not in known:
            problems.append(f"results[{index}].server: {record['server']!r} has no summary in servers")
            break
    return problems


def read_results(path: Path | str, what: str, max_bytes: int) -> dict[str, Any]:
    """Read a results JSON strictly (a baseline, a shard): bounded in size, UTF-8, JSON, this suite's
    schema and valid; anything else is a ConfigError of one line starting with ``what``."""
    from mailaudit.errors import ConfigError
    from mailaudit.results import SCHEMA

    path = Path(path)
    try:
        if path.stat().st_size > max_bytes:
            raise ConfigError(f"{what}: larger than {max_bytes} bytes; refused")
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read ({exc.strerror or exc.__class__.__name__})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{what}: not JSON (line {exc.lineno}: {exc.msg})") from None
    schema = document.get("schema") if isinstance(document, dict) else None
    if schema != SCHEMA:
        raise ConfigError(f"{what}: schema {str(schema)[:40]!r} is not {SCHEMA!r}: not a results document "
                          "of this suite version")
    problems = validate_document(document)
    if problems:
        raise ConfigError(f"{what}: not a valid results document ({problems[0]})")
    return document
