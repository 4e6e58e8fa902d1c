"""SMTP-BANNER-HOSTNAME and SMTP-BANNER-DISCLOSURE: what the greeting says about the server."""

import pytest

from mailaudit.evaluate.smtp import evaluate_banner_disclosure, evaluate_banner_hostname


@pytest.mark.requirement("SMTP-BANNER-HOSTNAME")
def test_greeting_names_the_ptr_host(inbound_snapshot, ptr_answer, verdict):
    """The 220 greeting names a hostname that matches the PTR of the server's IP."""
    verdict(evaluate_banner_hostname(inbound_snapshot, ptr_answer))


@pytest.mark.requirement("SMTP-BANNER-DISCLOSURE")
def test_greeting_and_ehlo_reveal_no_product_version(smtp_port_snapshot, verdict):
    """The greeting and EHLO reply reveal no product version."""
    verdict(evaluate_banner_disclosure(smtp_port_snapshot))
