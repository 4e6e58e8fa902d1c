"""Root conftest: the audit's plugin and fixture families. No probe logic lives here.

Options, server parametrization and report hooks are in mailaudit/plugin.py; each probe family's
session-scoped fixtures are in fixtures/<family>.py.
"""

pytest_plugins = [
    "mailaudit.plugin",
    "fixtures.smtp",
    "fixtures.dns",
    "fixtures.tls",
    "fixtures.api",
]
