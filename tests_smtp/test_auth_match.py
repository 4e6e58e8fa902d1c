"""SMTP-AUTH-MATCH: an authenticated user cannot send as another address."""

import pytest

from mailaudit.evaluate.smtp import evaluate_auth_match


@pytest.mark.requirement("SMTP-AUTH-MATCH")
def test_authenticated_user_cannot_send_as_another_address(auth_match_result, verdict):
    """Authenticated as one user, MAIL FROM another address (other user of the domain, and another domain)
    is refused; needs test credentials."""
    verdict(evaluate_auth_match(auth_match_result))
