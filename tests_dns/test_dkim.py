"""DNS-DKIM: each configured selector publishes a valid, strong key."""

import pytest

from mailaudit.evaluate.dns import evaluate_dkim
from mailaudit.verdict import Evaluation


@pytest.mark.requirement("DNS-DKIM")
def test_dkim_selector_publishes_a_strong_key(dkim_selector, dns_dkim, audit_config, verdict):
    """For each configured selector a valid DKIM key exists; RSA ≥ 1024 (policy default 2048)."""
    if dkim_selector is None:
        verdict(Evaluation.skipped_(
            "no DKIM selector given: selectors cannot be discovered from DNS; pass --dkim-selector "
            "or set dns.dkim_selectors in the policy"))
    verdict(evaluate_dkim(dkim_selector, dns_dkim, audit_config.policy.dns))
