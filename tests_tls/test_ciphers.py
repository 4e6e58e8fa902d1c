"""TLS-WEAK-CIPHERS per port."""

import pytest

from mailaudit.evaluate.tls import evaluate_weak_ciphers


@pytest.mark.requirement("TLS-WEAK-CIPHERS")
def test_no_weak_cipher_suites(tls_scan, tls_policy, verdict):
    """No NULL, anonymous, EXPORT, RC4, DES/3DES or other 64-bit-block suites; forward secrecy on all
    TLS 1.2 suites."""
    verdict(evaluate_weak_ciphers(tls_scan, tls_policy))
