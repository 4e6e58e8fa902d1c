"""SMTP-BRUTEFORCE-DEFENSE: repeated failed AUTH attempts are blocked (intrusive, runs last)."""

import pytest

from mailaudit.evaluate.smtp import evaluate_bruteforce


@pytest.mark.intrusive
@pytest.mark.requirement("SMTP-BRUTEFORCE-DEFENSE")
def test_password_guessing_is_blocked(bruteforce_result, verdict):
    """After N failed AUTH attempts the server blocks further attempts."""
    verdict(evaluate_bruteforce(bruteforce_result))
