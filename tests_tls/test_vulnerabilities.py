"""TLS-VULNERABILITIES per port."""

import pytest

from mailaudit.evaluate.tls import evaluate_vulnerabilities


@pytest.mark.requirement("TLS-VULNERABILITIES")
def test_not_vulnerable_to_known_tls_attacks(tls_scan, verdict):
    """Not vulnerable to Heartbleed, ROBOT, CCS injection, insecure renegotiation, TLS compression;
    supports TLS_FALLBACK_SCSV where legacy versions are on."""
    verdict(evaluate_vulnerabilities(tls_scan))
