"""Protocol versions per port: TLS-NO-SSL, TLS-NO-LEGACY-TLS (one verdict per version), TLS-MODERN."""

import pytest

from mailaudit.evaluate.tls import evaluate_legacy_version, evaluate_modern, evaluate_no_ssl


@pytest.mark.requirement("TLS-NO-SSL")
def test_ssl2_and_ssl3_are_refused(tls_scan, verdict):
    """SSL 2.0 and SSL 3.0 are refused."""
    verdict(evaluate_no_ssl(tls_scan))


@pytest.mark.requirement("TLS-NO-LEGACY-TLS")
def test_legacy_tls_version_is_refused(tls_scan, tls_legacy_version, verdict):
    """TLS 1.0 and TLS 1.1 are refused (one verdict per version)."""
    verdict(evaluate_legacy_version(tls_scan, tls_legacy_version))


@pytest.mark.requirement("TLS-MODERN")
def test_tls12_and_tls13_are_accepted(tls_scan, tls_policy, verdict):
    """TLS 1.2 is accepted; TLS 1.3 accepted (1.3 missing is low)."""
    verdict(evaluate_modern(tls_scan, tls_policy))
