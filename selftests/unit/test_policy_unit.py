"""Offline tests of policy loading and validation: a wrong key or type is one clear error."""

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
