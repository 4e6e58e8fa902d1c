"""The certificate served on each port: TLS-CERT-TRUST, -HOSTNAME, -EXPIRY, -KEY."""

import pytest

from mailaudit.evaluate.tls import (
    evaluate_cert_expiry,
    evaluate_cert_hostname,
    evaluate_cert_key,
    evaluate_cert_trust,
)


@pytest.mark.requirement("TLS-CERT-TRUST")
def test_certificate_chain_is_trusted(tls_scan, verdict):
    """The chain validates against the configured trust store."""
    verdict(evaluate_cert_trust(tls_scan))


@pytest.mark.requirement("TLS-CERT-HOSTNAME")
def test_certificate_covers_the_host_name(tls_scan, verdict):
    """The certificate covers the host name that was probed."""
    verdict(evaluate_cert_hostname(tls_scan))


@pytest.mark.requirement("TLS-CERT-EXPIRY")
def test_certificate_is_valid_beyond_the_warning_window(tls_scan, tls_policy, verdict):
    """Not expired, and valid for at least the policy's warning window (default 21 days)."""
    verdict(evaluate_cert_expiry(tls_scan, tls_policy))


@pytest.mark.requirement("TLS-CERT-KEY")
def test_certificate_key_and_signature_are_strong(tls_scan, tls_policy, verdict):
    """RSA >= 2048 bits or EC >= 256 bits; no SHA-1/MD5 signature."""
    verdict(evaluate_cert_key(tls_scan, tls_policy))
