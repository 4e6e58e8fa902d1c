"""Offline tests of policy loading and validation: a wrong key or type is one clear error."""

import time
import tracemalloc
from pathlib import Path

import pytest

from mailaudit.errors import ConfigError
from mailaudit.policy import load_policy

REPO = Path(__file__).resolve().parents[2]


def test_bundled_policies_load_and_cite_every_value():
    """baseline and strict load, and every leaf carries a source."""
    for name in ("baseline", "strict"):
        policy = load_policy(REPO / "policies" / f"{name}.yaml")
        assert policy.name == name
        assert policy.sources and all(policy.sources.values())


def test_strict_extends_baseline():
    """strict overrides single thresholds and inherits the rest."""
    strict = load_policy(REPO / "policies" / "strict.yaml")
    baseline = load_policy(REPO / "policies" / "baseline.yaml")
    assert strict.smtp.harvest_attempts < baseline.smtp.harvest_attempts
    assert strict.smtp.ports == baseline.smtp.ports


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text("extends: " + str(REPO / "policies" / "baseline.yaml") + "\n" + text)
    return path


@pytest.mark.parametrize(("text", "expected"), [
    ("smtp:\n  harvest_atempts: {value: 3, source: x}\n", "unknown key 'smtp.harvest_atempts'"),
    ("smtp:\n  harvest_attempts: {value: many, source: x}\n", "'smtp.harvest_attempts' must be int"),
    ("smtp:\n  harvest_attempts: {value: true, source: x}\n", "must be int, not bool"),
    ("smtp:\n  harvest_attempts: 3\n", "'smtp.harvest_attempts' must be {value"),
    ("smtp:\n  harvest_attempts: {value: 3}\n", "'smtp.harvest_attempts' must be {value"),
    ("smtp:\n  ports: {value: 25, source: x}\n", "'smtp.ports' must be a list"),
    ("colour: {value: red, source: x}\n", "unknown section 'colour'"),
])
def test_invalid_policies_name_the_key(tmp_path, text, expected):
    """Every validation error names the offending key."""
    with pytest.raises(ConfigError, match=None) as info:
        load_policy(_write(tmp_path, text))
    assert expected in str(info.value)


def test_malformed_yaml_is_one_line(tmp_path):
    """Malformed YAML gives the file and the line, not a parser traceback."""
    path = tmp_path / "bad.yaml"
    path.write_text("smtp: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        load_policy(path)
    assert "malformed YAML at line" in str(info.value) and "\n" not in str(info.value)


def test_missing_policy_file(tmp_path):
    """A missing file is a ConfigError, not an OSError."""
    with pytest.raises(ConfigError, match="cannot read"):
        load_policy(tmp_path / "nope.yaml")


def _laughs(levels: int = 9) -> tuple[str, str]:
    """A billion-laughs value (nine levels of aliases, 9**9 leaves once expanded) and its last anchor."""
    text = "[&a [lol,lol,lol,lol,lol,lol,lol,lol,lol]"
    previous = "a"
    for name in "bcdefghi"[:levels - 1]:
        text += f", &{name} [" + ",".join([f"*{previous}"] * 9) + "]"
        previous = name
    return text + "]", previous


def test_billion_laughs_policy_fails_at_once_in_bounded_memory(tmp_path):
    """A 0.4 KB policy whose 'source' expands to 387 million strings is refused at the first
    anchor, in milliseconds and under 5 MB (the old loader took 35 s and 3 GB)."""
    anchors, last = _laughs()
    text = (f"extends: {REPO / 'policies' / 'baseline.yaml'}\nsmtp:\n  harvest_attempts:\n"
            f"    value: 3\n    note: {anchors}\n    source: *{last}\n")
    path = tmp_path / "laughs.yaml"
    path.write_text(text)
    assert len(text) < 1000
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(ConfigError, match="anchors and aliases") as info:
            load_policy(path)
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert elapsed < 1 and peak < 5_000_000, (elapsed, peak)
    assert "\n" not in str(info.value) and "line 5" in str(info.value)


@pytest.mark.parametrize(("text", "expected"), [
    ("smtp: &s {}\n", "anchors and aliases (& and *) are not allowed at line 1"),
    ("[" * 5000 + "]" * 5000, "nested deeper than"),
    ("name: a\nname: b\n", "key 'name' given twice at line 2"),
    ("extends: [baseline.yaml]\n", "'extends' must name a policy file"),
    ("extends: ''\n", "'extends' must name a policy file"),
    ("extends: p.yaml\n", "'extends' loops back to itself"),
    ("smtp: !!python/object/apply:os.system [true]\n", "malformed YAML at line 1"),
    ("x: 2027-02-30\n", "invalid value near line 1"),
    ("x: " + "1" * 5000 + "\n", "invalid value near line 1"),
])
def test_hostile_yaml_is_one_line(tmp_path, text, expected):
    """Aliases, deep nesting, duplicate keys, bad 'extends', unsafe tags and values YAML cannot
    build are each one ConfigError line naming the problem."""
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_policy(path)
    assert expected in str(info.value) and "\n" not in str(info.value), str(info.value)


def test_oversized_and_non_utf8_policy_files_are_refused(tmp_path):
    """A policy over the size cap is refused without being parsed; bytes that are not UTF-8 are named."""
    big = tmp_path / "big.yaml"
    big.write_text("# padding\n" * 200_000)
    with pytest.raises(ConfigError, match="larger than 1000000 bytes"):
        load_policy(big)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_policy(latin)


def test_extends_chain_is_bounded(tmp_path):
    """A chain of 'extends' longer than MAX_EXTENDS files is refused (each file is read once)."""
    for index in range(12):
        (tmp_path / f"p{index}.yaml").write_text(f"extends: p{index + 1}.yaml\n")
    with pytest.raises(ConfigError, match="chain longer than"):
        load_policy(tmp_path / "p0.yaml")


@pytest.mark.parametrize(("text", "expected"), [
    ("smtp:\n  connect_timeout_s: {value: .inf, source: x}\n", "must be a finite number"),
    ("smtp:\n  connect_timeout_s: {value: .nan, source: x}\n", "must be a finite number"),
    ("smtp:\n  harvest_attempts: {value: -1, source: x}\n", "from 0 to 1e+09, not -1"),
    ("smtp:\n  harvest_attempts: {value: " + "9" * 400 + ", source: x}\n", "from 0 to 1e+09, not a number too large"),
    ("smtp:\n  harvest_attempts: {value: 3, source: [a, b]}\n", "'smtp.harvest_attempts.source' must be text"),
    ("smtp:\n  harvest_attempts: {value: 3, source: x, note: 5}\n", "'smtp.harvest_attempts.note' must be text"),
    ("smtp:\n  harvest_attempts: {value: 3, source: x, 7: y}\n", "unknown field '7'"),
    ("7: {value: 1, source: x}\nzz: {value: 1, source: x}\n", "unknown section '7'"),
])
def test_leaf_values_are_checked_strictly(tmp_path, text, expected):
    """Non-finite, negative or absurdly large numbers, non-text sources and notes, and non-string
    keys are one clear error (never an OverflowError later, nor a TypeError from sorting mixed keys)."""
    with pytest.raises(ConfigError) as info:
        load_policy(_write(tmp_path, text))
    assert expected in str(info.value), str(info.value)
