"""Self-test fixtures: the lab audits are shared by every end-to-end test of a session."""

from __future__ import annotations

import pytest

from selftests.e2e.lab import AuditRun, lab_audit


@pytest.fixture(scope="session")
def hardened_run() -> AuditRun:
    """The full audit (with --intrusive) of the hardened lab server."""
    return lab_audit("hardened")


@pytest.fixture(scope="session")
def weak_run() -> AuditRun:
    """The full audit (with --intrusive) of the weak lab server."""
    return lab_audit("weak")
