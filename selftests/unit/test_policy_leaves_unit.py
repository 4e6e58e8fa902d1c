"""Every policy leaf is read somewhere: a cited threshold that nothing enforces is a promise the
suite does not keep."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from mailaudit.policy import Policy, load_policy

REPO = Path(__file__).resolve().parents[2]
BASELINE = REPO / "policies" / "baseline.yaml"
READERS = ("mailaudit", "fixtures", "tests_smtp", "tests_dns", "tests_tls", "tests_api")


def _code_outside_policy() -> str:
    """The source of every module that may read the policy (policy.py itself excluded)."""
    files = [p for folder in READERS for p in (REPO / folder).rglob("*.py") if p.name != "policy.py"]
    return "\n".join(p.read_text(encoding="utf-8") for p in files)


def _leaves(policy: Policy) -> list[tuple[str, str]]:
    """(section, field) for every leaf of every section."""
    return [(section.name, leaf.name)
            for section in dataclasses.fields(policy) if section.name not in ("name", "sources")
            for leaf in dataclasses.fields(getattr(policy, section.name))]


def test_every_policy_leaf_is_read_somewhere():
    """Each leaf of the baseline policy is read by name (``.leaf`` or ``"section.leaf"``) outside
    policy.py; a leaf nothing reads is dead and must be removed or enforced."""
    code = _code_outside_policy()
    policy = load_policy(BASELINE)
    dead = [f"{section}.{leaf}" for section, leaf in _leaves(policy)
            if not re.search(rf"\.{leaf}\b|[\"']{section}\.{leaf}[\"']", code)]
    assert not dead, f"policy leaves nothing reads: {dead}"


def test_every_leaf_cites_a_source():
    """Each leaf of the baseline carries its citation."""
    policy = load_policy(BASELINE)
    missing = [f"{s}.{leaf}" for s, leaf in _leaves(policy) if not policy.source_of(f"{s}.{leaf}")]
    assert not missing
