"""Headless Chromium for the report self-tests, driven over the DevTools protocol on a pipe.

Chromium's one-shot switches (``--dump-dom``, ``--screenshot``, ``--print-to-pdf``) produce
nothing when combined with ``--blink-settings=scriptEnabled=false`` in current headless builds, so
the tests speak the DevTools protocol (``--remote-debugging-pipe``: JSON messages separated by
NUL bytes on file descriptors 3 and 4) and switch scripts off with
``Emulation.setScriptExecutionDisabled``, the same switch DevTools uses. One page per ``Browser``.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHROMIUM_NAMES = ("chromium", "chromium-browser")
TIMEOUT_S = 30.0


def chromium_path() -> str | None:
    """The Chromium executable, when installed (Debian's ``chromium`` package)."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


class BrowserError(RuntimeError):
    """Chromium did not answer, or answered with a protocol error."""


@dataclass(frozen=True)
class PageMetrics:
    """The laid-out page: content width and height, and the viewport's width (CSS pixels)."""

    content_width: float
    content_height: float
    viewport_width: float


class Browser:
    """One headless Chromium with one page; use as a context manager."""

    def __init__(self, width: int = 1280, height: int = 1000, scripts: bool = True) -> None:
        executable = chromium_path()
        if executable is None:
            raise BrowserError("chromium is not installed (lab/packages/report.txt; run lab/install)")
        self.width, self.height, self.scripts = width, height, scripts
        self._profile = tempfile.mkdtemp(prefix="mailaudit-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def _wire_pipes() -> None:  # in the child: the protocol's file descriptors 3 and 4
            high_r = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)
            high_w = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        self._proc = subprocess.Popen(
            [executable, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
             "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--hide-scrollbars",
             f"--user-data-dir={self._profile}", f"--window-size={width},{height}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=_wire_pipes, close_fds=False)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._next_id = 0
        self._buffer = b""
        self._events: list[dict[str, Any]] = []
        self._session = ""

    # -- context manager ------------------------------------------------------------------------
    def __enter__(self) -> Browser:
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self._session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.call("Page.enable")
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False})
        if not self.scripts:
            self.call("Emulation.setScriptExecutionDisabled", {"value": True})
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """End Chromium (the one this object started) and remove its profile."""
        for fd in (self._to_browser, self._from_browser):
            with contextlib.suppress(OSError):
                os.close(fd)
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
        shutil.rmtree(self._profile, ignore_errors=True)

    # -- protocol -------------------------------------------------------------------------------
    def call(self, method: str, params: dict[str, Any] | None = None, timeout: float = TIMEOUT_S) -> dict[str, Any]:
        """Send one command (to the page's session once attached) and return its result."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if self._session:
            message["sessionId"] = self._session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error'].get('message')}")
                return reply.get("result", {})
            if "method" in reply:
                self._events.append(reply)

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise BrowserError(f"chromium did not answer within {TIMEOUT_S:g} s")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise BrowserError("chromium closed the DevTools pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def _wait_event(self, name: str, timeout: float = TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while True:
            for event in self._events:
                if event.get("method") == name:
                    self._events.remove(event)
                    return
            message = self._read(deadline)
            if "method" in message:
                self._events.append(message)

    # -- what the tests use ---------------------------------------------------------------------
    def open(self, path: Path) -> None:
        """Load a local HTML file and wait until it has loaded."""
        self._events.clear()
        self.call("Page.navigate", {"url": path.resolve().as_uri()})
        self._wait_event("Page.loadEventFired")

    def dom(self) -> str:
        """The rendered document as HTML (read through the DOM domain: works with scripts off)."""
        root = self.call("DOM.getDocument", {"depth": -1})["root"]
        return self.call("DOM.getOuterHTML", {"nodeId": root["nodeId"]})["outerHTML"]

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (as a user's actions would run)."""
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression}: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def count(self, selector: str) -> int:
        """How many elements match a CSS selector in the rendered document."""
        root = self.call("DOM.getDocument", {"depth": 0})["root"]
        return len(self.call("DOM.querySelectorAll", {"nodeId": root["nodeId"], "selector": selector})["nodeIds"])

    def bottom(self, selector: str) -> float:
        """Where the first element matching ``selector`` ends, in CSS pixels from the page's top."""
        root = self.call("DOM.getDocument", {"depth": 0})["root"]
        node = self.call("DOM.querySelector", {"nodeId": root["nodeId"], "selector": selector})["nodeId"]
        if not node:
            raise BrowserError(f"no element matches {selector!r}")
        quad = self.call("DOM.getBoxModel", {"nodeId": node})["model"]["border"]
        return max(quad[1::2])

    def metrics(self) -> PageMetrics:
        """The laid-out size of the page (no JavaScript needed)."""
        result = self.call("Page.getLayoutMetrics")
        content, viewport = result["cssContentSize"], result["cssLayoutViewport"]
        return PageMetrics(content["width"], content["height"], viewport["clientWidth"])

    def screenshot(self, path: Path, top: float | None = None, height: float | None = None) -> None:
        """A PNG of the first screen (the window size), or of the band ``top``..``top + height``."""
        params: dict[str, Any] = {"format": "png"}
        if top is not None:
            params |= {"captureBeyondViewport": True,
                       "clip": {"x": 0, "y": top, "width": self.width, "height": height or self.height, "scale": 1}}
        data = self.call("Page.captureScreenshot", params)["data"]
        path.write_bytes(base64.b64decode(data))

    def pdf(self, path: Path) -> None:
        """Print to PDF as a user would: the page's own @page size (A4), backgrounds on."""
        data = self.call("Page.printToPDF", {"preferCSSPageSize": True, "printBackground": True},
                         timeout=60)["data"]
        path.write_bytes(base64.b64decode(data))
