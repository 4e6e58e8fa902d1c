"""SMTP-VRFY-EXPN: VRFY and EXPN do not confirm users."""

import pytest

from mailaudit.evaluate.smtp import evaluate_vrfy_expn


@pytest.mark.requirement("SMTP-VRFY-EXPN")
def test_vrfy_and_expn_do_not_confirm_users(vrfy_result, verdict):
    """VRFY and EXPN do not confirm users (502/252/550 fine; 250 with a user is a failure)."""
    verdict(evaluate_vrfy_expn(vrfy_result))
