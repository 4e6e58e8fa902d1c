"""SMTP-AUTH-TLS-ONLY: AUTH is offered and accepted only after STARTTLS."""

import pytest

from mailaudit.evaluate.smtp import evaluate_auth_tls_only


@pytest.mark.requirement("SMTP-AUTH-TLS-ONLY")
def test_auth_only_after_starttls(auth_before_tls, verdict):
    """AUTH is not offered, and not accepted, before STARTTLS on STARTTLS ports."""
    snapshot, attempt = auth_before_tls
    verdict(evaluate_auth_tls_only(snapshot, attempt))
