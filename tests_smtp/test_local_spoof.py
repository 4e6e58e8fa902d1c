"""SMTP-LOCAL-SPOOF: unauthenticated mail from a local address to a local user is refused."""

import pytest

from mailaudit.evaluate.smtp import evaluate_local_spoof


@pytest.mark.requirement("SMTP-LOCAL-SPOOF")
def test_unauthenticated_local_sender_is_refused(local_spoof_check, verdict):
    """Unauthenticated MAIL FROM a local-domain address to a local recipient (postmaster@domain by default)
    is refused."""
    verdict(evaluate_local_spoof(local_spoof_check))
