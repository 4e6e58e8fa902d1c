"""SMTP-CATCHALL: mail to nonexistent local users is refused."""

import pytest

from mailaudit.evaluate.smtp import evaluate_catchall


@pytest.mark.requirement("SMTP-CATCHALL")
def test_random_local_recipient_is_refused(catchall_check, verdict):
    """RCPT TO a random, surely-nonexistent local part of the domain is refused (5xx)."""
    verdict(evaluate_catchall(catchall_check))
