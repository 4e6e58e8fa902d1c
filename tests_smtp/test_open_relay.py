"""SMTP-OPEN-RELAY: the server refuses to relay for unauthenticated outsiders."""

import pytest

from mailaudit.evaluate.relay import evaluate_relay_variant
from mailaudit.verdict import Evaluation


@pytest.mark.requirement("SMTP-OPEN-RELAY")
def test_relay_refused_for_external_recipient(relay_channel_result, relay_variant_id, verdict):
    """Every relay variant to an external recipient is refused with 5xx; 4xx is inconclusive; DATA is never sent."""
    if relay_channel_result.unavailable:
        verdict(Evaluation.skipped_(relay_channel_result.unavailable))
    verdict(evaluate_relay_variant(relay_channel_result.results[relay_variant_id]))
