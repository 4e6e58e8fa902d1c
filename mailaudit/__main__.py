"""``mailaudit [pytest options]``: run the audit from any working folder, always as this suite.

pytest decides its root folder, its ini file and what to collect from the command line and the
working folder: run from elsewhere with absolute paths, or with an existing report file named
without ``=``, it may pick another root and collect other tests (or reject ``--server``). This
entry point pins the suite's ``pytest.ini`` and root folder, turns the path options and test paths
given relative to the caller's folder into absolute ones, and runs pytest from the suite's folder,
so the same command works from cron, systemd or CI wherever it starts.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

SUITE = Path(__file__).resolve().parents[1]
PATH_OPTIONS = frozenset({
    "--policy", "--waivers", "--ca-file", "--results-json", "--html", "--css", "--junitxml", "--junit-xml",
    "-c", "--rootdir", "--api-fieldmap", "--inventory", "--baseline", "--history", "--audit-report", "--basetemp",
})


# Options that take a value in the next argument (pytest's own and the plugin's): that value is
# never a test path, even when a folder of that name exists (``--dkim-selector lab``).
PYTEST_VALUE_OPTIONS = frozenset({
    "-k", "-m", "-p", "-o", "-r", "-W", "--tb", "--maxfail", "--deselect", "--ignore",
    "--ignore-glob", "--durations", "--durations-min", "--log-level", "--log-file", "--log-cli-level",
    "--confcutdir", "--override-ini", "--capture", "--import-mode", "--junit-prefix", "--color",
})


def _plugin_value_options() -> frozenset[str]:
    """The mailaudit options that take a value (read from the plugin's own option table)."""
    from mailaudit.plugin import pytest_addoption

    names: set[str] = set()

    class Recorder:
        def getgroup(self, *args: object, **kwargs: object) -> Recorder:
            return self

        def addoption(self, *opts: str, **attrs: object) -> None:
            if attrs.get("action") not in ("store_true", "store_false", "count"):
                names.update(opts)

    pytest_addoption(Recorder())  # type: ignore[arg-type]
    return frozenset(names)


def absolute_args(args: list[str], cwd: Path) -> list[str]:
    """The arguments with every path option's value, and every test path that exists relative to
    ``cwd``, made absolute; other option values are left as they are."""
    value_options = PYTEST_VALUE_OPTIONS | _plugin_value_options()
    result: list[str] = []
    pending: str | None = None  # the option whose value comes next
    for arg in args:
        if pending is not None:
            result.append(_absolute(arg, cwd) if pending in PATH_OPTIONS else arg)
            pending = None
        elif arg in PATH_OPTIONS or arg in value_options:
            result.append(arg)
            pending = arg
        elif arg.startswith("--") and "=" in arg and arg.split("=", 1)[0] in PATH_OPTIONS:
            name, value = arg.split("=", 1)
            result.append(f"{name}={_absolute(value, cwd)}")
        elif not arg.startswith("-") and (cwd / arg.split("::", 1)[0]).exists():
            path, sep, rest = arg.partition("::")
            result.append(_absolute(path, cwd) + sep + rest)
        else:
            result.append(arg)
    return result


def _absolute(value: str, cwd: Path) -> str:
    return value if os.path.isabs(value) else str((cwd / value).resolve())


def main(argv: list[str] | None = None) -> int:
    """Run the suite's pytest with the caller's arguments; return pytest's exit status."""
    args = absolute_args(list(sys.argv[1:] if argv is None else argv), Path.cwd())
    os.chdir(SUITE)
    return int(pytest.main(["-c", str(SUITE / "pytest.ini"), "--rootdir", str(SUITE), *args]))


if __name__ == "__main__":
    sys.exit(main())
