"""The one YAML loader for files a user hands the suite (policies, waivers): bounded by construction.

YAML's anchors and aliases let a file of a few hundred bytes describe a structure of billions of
nodes ("billion laughs"); PyYAML's merge keys (``<<: [*a, *a]``) even copy them. The suite's files
never need them, so an anchor (``&x``) or an alias (``*x``) is refused where it stands, before
anything is built. The file size is capped, nesting depth is capped (a deep ``[[[[...]]]]`` would
otherwise exhaust Python's stack), duplicate keys are refused (the second would silently win), and
only YAML's safe types are built. Every problem is a ConfigError of one line naming the file and
the line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError

from mailaudit.errors import ConfigError

MAX_YAML_BYTES = 1_000_000  # a policy is ~10 KB, a waivers file for a large fleet well under 1 MB
MAX_YAML_DEPTH = 40  # the deepest structure the suite reads (policy leaf records) is 5 levels


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors, aliases, deep nesting and duplicate keys."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self.last_mark: Any = None

    def compose_node(self, parent: Any, index: Any) -> Any:
        """Refuse an alias or an anchor before it is followed; bound the nesting depth."""
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise ComposerError(None, None, "anchors and aliases (& and *) are not allowed",
                                event.start_mark)
        if self._depth >= MAX_YAML_DEPTH:
            raise ComposerError(None, None, f"nested deeper than {MAX_YAML_DEPTH} levels", event.start_mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        """Remember where the value being built starts, to name its line if building fails."""
        self.last_mark = node.start_mark
        return super().construct_object(node, deep=deep)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        """Refuse a key given twice in one mapping (YAML would keep the last one silently)."""
        if isinstance(node, yaml.MappingNode):
            seen: set[object] = set()
            for key_node, _ in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                    key = (key_node.tag, key_node.value)
                    if key in seen:
                        raise ConstructorError(None, None, f"key {key_node.value[:40]!r} given twice",
                                               key_node.start_mark)
                    seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml(path: Path, what: str, max_bytes: int = MAX_YAML_BYTES) -> Any:
    """Read one YAML document from ``path``; ``what`` prefixes every error ("policy FILE").

    Raises ConfigError (one line) for an unreadable, oversized, non-UTF-8 or malformed file, an
    anchor or alias, nesting beyond MAX_YAML_DEPTH, a duplicate key, or a value YAML cannot build
    (``2027-02-30``, an integer of thousands of digits)."""
    text = _read_text(Path(path), what, max_bytes)
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        raise ConfigError(f"{what}: {_describe(exc)}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what}: malformed YAML ({_first_line(str(exc))})") from None
    except ValueError as exc:  # the safe constructor's int/date/float parsing (bad date, huge int)
        mark = loader.last_mark
        where = f" near line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{what}: invalid value{where}: {_first_line(str(exc))}") from None
    finally:
        loader.dispose()


def _read_text(path: Path, what: str, max_bytes: int) -> str:
    """The file's text, read up to the cap (a larger file is refused without reading it all)."""
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read ({exc.strerror or exc.__class__.__name__})") from None
    if len(data) > max_bytes:
        raise ConfigError(f"{what}: larger than {max_bytes} bytes; refused")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what}: not UTF-8 text (byte {exc.start + 1})") from None


def _describe(exc: yaml.MarkedYAMLError) -> str:
    """'malformed YAML at line N: problem', or the loader's own refusal at line N."""
    mark = exc.problem_mark or exc.context_mark
    where = f" at line {mark.line + 1}" if mark else ""
    problem = _first_line(", ".join(p for p in (exc.context, exc.problem) if p))
    if problem.startswith(("anchors and aliases", "nested deeper", "key ")):
        return f"{problem}{where}"
    return f"malformed YAML{where}" + (f": {problem}" if problem else "")


def _first_line(text: str) -> str:
    """One line of at most 160 characters (YAML's messages can span several)."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line[:160]
