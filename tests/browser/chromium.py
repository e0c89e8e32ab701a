"""Headless Chromium driven over its DevTools protocol, with every host but loopback
unreachable: pages under test must render from what the service itself serves.

A small synchronous client over one websocket (the browser's), with one flattened
session per page: enough to navigate, wait for a condition in the DOM, read values out
of it, list the page's network requests and take a screenshot.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from replay_service.cli.children import free_port

# Names resolve to nothing and every connection that is not loopback goes through a
# proxy port that nobody listens on: a request to any other host fails.
_OFFLINE_FLAGS = ('--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
                  '--proxy-bypass-list=127.0.0.1')


class DevToolsError(RuntimeError):
    """The browser answered a command with an error."""


class DevTools:
    """Commands and their answers over the browser's websocket; events are kept in order."""

    def __init__(self, url: str) -> None:
        self._exit = ExitStack()  # entered as its context manager, as websockets asks
        self._socket: ClientConnection = self._exit.enter_context(
            connect(url, max_size=None, open_timeout=30))
        self._last_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, params: dict[str, Any] | None = None,
             session_id: str | None = None, timeout_s: float = 30.0) -> dict[str, Any]:
        self._last_id += 1
        message: dict[str, Any] = {"id": self._last_id, "method": method, "params": params or {}}
        if session_id is not None:
            message["sessionId"] = session_id
        self._socket.send(json.dumps(message))
        deadline = time.monotonic() + timeout_s
        while True:
            reply = json.loads(self._socket.recv(timeout=max(0.0, deadline - time.monotonic())))
            if reply.get("id") != self._last_id:
                self.events.append(reply)
                continue
            if "error" in reply:
                raise DevToolsError(f"{method}: {reply['error']}")
            result: dict[str, Any] = reply["result"]
            return result

    def close(self) -> None:
        self._exit.close()


class Page:
    """One tab: evaluate JavaScript in it, wait for the DOM, screenshot it."""

    def __init__(self, devtools: DevTools, session_id: str) -> None:
        self._devtools = devtools
        self._session_id = session_id

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self._devtools.call(method, params, self._session_id)

    def evaluate(self, expression: str) -> Any:
        """The expression's value (awaited when a promise), as JSON would carry it."""
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        if "exceptionDetails" in result:
            raise DevToolsError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout_s: float = 30.0) -> Any:
        """Poll until the expression is truthy and return its value; on timeout, fail with
        the page's visible text, which usually says what went wrong."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.2)
        text = self.evaluate("document.body ? document.body.innerText.slice(0, 2000) : ''")
        raise AssertionError(f"timed out after {timeout_s} s waiting for {expression!r}; "
                             f"the page shows:\n{text}")

    def screenshot(self, path: Path) -> Path:
        """What the window shows, as a PNG."""
        shot = self.call("Page.captureScreenshot", {"format": "png"})
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def _events(self, method: str) -> list[dict[str, Any]]:
        return [event["params"] for event in self._devtools.events
                if event.get("method") == method and event.get("sessionId") == self._session_id]

    @property
    def requested_urls(self) -> list[str]:
        """Every URL the page asked for, its scripts' fetches included."""
        self.evaluate("0")  # drain the events that arrived since the last command
        return [event["request"]["url"] for event in self._events("Network.requestWillBeSent")]

    def foreign_requests(self, origin: str) -> list[tuple[str, str | None]]:
        """Requests for anything not from origin (its data: and blob: URLs are the page's
        own), each with the reason the browser blocked it ("csp": refused by the page's
        Content-Security-Policy before anything was sent) or None."""
        self.evaluate("0")
        blocked = {event["requestId"]: event.get("blockedReason")
                   for event in self._events("Network.loadingFailed")}
        own = (f"{origin}/", "data:", f"blob:{origin}/")
        return [(event["request"]["url"], blocked.get(event["requestId"]))
                for event in self._events("Network.requestWillBeSent")
                if not event["request"]["url"].startswith(own)]

    @property
    def errors(self) -> list[str]:
        """Uncaught exceptions, console errors and the browser's own (a refused policy),
        but not 4xx answers: the pages expect those (401 without a key, 404 for weights not
        yet published) and handle them."""
        self.evaluate("0")
        thrown = [event["exceptionDetails"].get("exception", {}).get("description", str(event))
                  for event in self._events("Runtime.exceptionThrown")]
        logged = [" ".join(str(arg.get("value", arg.get("description", ""))) for arg in
                           event["args"]) for event in self._events("Runtime.consoleAPICalled")
                  if event["type"] == "error"]
        browser = [event["entry"]["text"] for event in self._events("Log.entryAdded")
                   if event["entry"]["level"] == "error" and event["entry"]["source"] != "network"]
        return thrown + logged + browser


class Chromium:
    """A headless Chromium with its own profile, reachable only over loopback."""

    def __init__(self, work_dir: Path) -> None:
        executable = shutil.which("chromium")
        if executable is None:
            raise RuntimeError("chromium is not on PATH: apt-get install chromium")
        self._profile_dir = work_dir / "profile"
        self.log_path = work_dir / "chromium.log"
        # A file, not a pipe: Chromium talks a lot, and a full pipe would stall it.
        self._log = self.log_path.open("wb")
        dead_proxy = f"--proxy-server=http://127.0.0.1:{free_port()}"
        self._process = subprocess.Popen(
            [executable, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--disable-extensions", "--remote-debugging-port=0",
             f"--user-data-dir={self._profile_dir}", *_OFFLINE_FLAGS, dead_proxy,
             "about:blank"],
            stdout=subprocess.DEVNULL, stderr=self._log)
        try:
            self._devtools = DevTools(self._devtools_url())
        except BaseException:
            self._process.kill()
            self._process.wait()
            self._log.close()
            raise

    def _devtools_url(self, timeout_s: float = 30.0) -> str:
        """Chromium writes the port it picked, and the browser's path, into the profile."""
        port_file = self._profile_dir / "DevToolsActivePort"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"chromium exited:\n{self.log_path.read_text()}")
            lines = port_file.read_text().split() if port_file.exists() else []
            if len(lines) == 2:
                return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
            time.sleep(0.1)
        raise RuntimeError(f"chromium wrote no DevTools port in {timeout_s:.0f} s")

    def open(self, url: str, width: int = 1280, height: int = 1600) -> Page:
        """A new tab showing url, its network and script errors recorded from the start."""
        target = self._devtools.call("Target.createTarget", {"url": "about:blank"})
        session = self._devtools.call("Target.attachToTarget", {"targetId": target["targetId"],
                                                                "flatten": True})
        page = Page(self._devtools, session["sessionId"])
        for domain in ("Network", "Page", "Runtime", "Log"):
            page.call(f"{domain}.enable")
        page.call("Emulation.setDeviceMetricsOverride", {"width": width, "height": height,
                                                         "deviceScaleFactor": 1, "mobile": False})
        page.call("Page.navigate", {"url": url})
        # Navigating answers before the new document exists: wait until it has loaded.
        page.wait_for("location.href !== 'about:blank' && document.readyState === 'complete'")
        return page

    def close(self) -> None:
        with suppress(DevToolsError, ConnectionClosed, TimeoutError):
            # It may close the socket before it answers.
            self._devtools.call("Browser.close", timeout_s=10)
        self._devtools.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._log.close()
