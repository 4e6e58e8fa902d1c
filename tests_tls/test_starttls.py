"""TLS-STARTTLS-OFFERED on every STARTTLS port (SMTP 25/587, IMAP 143, POP3 110)."""

import pytest

from mailaudit.evaluate.tls import evaluate_starttls_offered


@pytest.mark.requirement("TLS-STARTTLS-OFFERED")
def test_starttls_is_offered_and_works(tls_starttls_scan, verdict):
    """STARTTLS is advertised and works on every STARTTLS port."""
    verdict(evaluate_starttls_offered(tls_starttls_scan))
