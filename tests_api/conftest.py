"""API test fixtures and the --api-fieldmap option.

The fixtures live in fixtures/api.py; importing them here makes them available to tests_api/
whether or not the root conftest lists fixtures.api in pytest_plugins. The cross-checks also use
relay_observation, catchall_observation (fixtures/smtp.py) and legacy_tls_observation
(fixtures/tls.py), which the root conftest registers.
"""

from __future__ import annotations

import pytest

from fixtures.api import FIELDMAP_OPTION, api_fieldmap, api_policy, api_snapshot
from mailaudit.errors import ConfigError
from mailaudit.fieldmap import load_fieldmap

__all__ = ["api_fieldmap", "api_policy", "api_snapshot"]


def pytest_addoption(parser: pytest.Parser) -> None:
    """--api-fieldmap: a site's corrected field map for its SmarterMail build."""
    parser.getgroup("mailaudit").addoption(
        FIELDMAP_OPTION, dest="api_fieldmap", metavar="FILE",
        help="SmarterMail API field map (default: mailaudit/fieldmap.yaml); edit a copy to fix "
             "assumed endpoints/fields for your build")


def pytest_configure(config: pytest.Config) -> None:
    """A bad field map stops the run before any probe, with one line."""
    path = config.getoption("api_fieldmap", default=None)
    if path:
        try:
            load_fieldmap(path)
        except ConfigError as exc:
            raise pytest.UsageError(f"mailaudit: {exc}") from None
