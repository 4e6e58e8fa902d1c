"""SMTP-SUBMISSION-AUTH: submission ports refuse transactions without AUTH."""

import pytest

from mailaudit.evaluate.smtp import evaluate_submission


@pytest.mark.requirement("SMTP-SUBMISSION-AUTH")
def test_submission_without_auth_is_refused(submission_check, verdict):
    """On submission ports (587, 465) a transaction without AUTH is refused."""
    verdict(evaluate_submission(submission_check))
