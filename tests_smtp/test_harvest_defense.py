"""SMTP-HARVEST-DEFENSE: directory harvesting is cut off (intrusive, runs last)."""

import pytest

from mailaudit.evaluate.smtp import evaluate_harvest


@pytest.mark.intrusive
@pytest.mark.requirement("SMTP-HARVEST-DEFENSE")
def test_harvesting_session_is_cut_off(harvest_result, verdict):
    """After N unknown recipients in a session the server drops the session or answers 421."""
    verdict(evaluate_harvest(harvest_result))
