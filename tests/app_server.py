"""Test helpers for the web app: ``python app.py`` in a subprocess on a free 127.0.0.1 port, and headless
Debian Chromium through Playwright.

Used by test_app_api.py and test_app_browser.py (not a test module itself).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# WCAG contrast of an element's text against the first opaque background behind it, as Chromium computes them.
CONTRAST_JS = """(el) => {
  const rgba = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
                               return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  let bg = null, node = el;
  while (node && node.nodeType === 1) {
    const c = rgba(getComputedStyle(node).backgroundColor);
    if (c.length >= 3 && (c.length === 3 || c[3] > 0.5)) { bg = c; break; }
    node = node.parentElement;
  }
  bg = bg || [255, 255, 255];
  const fg = rgba(getComputedStyle(el).color);
  const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
  return {ratio: (a + 0.05) / (b + 0.05), fg: getComputedStyle(el).color, bg: 'rgb(' + bg.slice(0, 3).join(',') + ')'};
}"""


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1 never goes through a proxy


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class AppServer:
    url: str
    process: subprocess.Popen
    lines: list[str] = field(default_factory=list)  # the app's console output so far

    @property
    def output(self) -> str:
        return "\n".join(self.lines)


def _pump(process: subprocess.Popen, lines: list[str]) -> None:
    for line in process.stdout:
        lines.append(line.rstrip("\n"))


def _env(extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRADIO_", "PAPERCHAT_", "SPACE_"))}
    env.update({"TIKTOKEN_CACHE_DIR": str(SHARED / "tiktoken"), "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1",
                "ANONYMIZED_TELEMETRY": "False", "GRADIO_ANALYTICS_ENABLED": "False", "no_proxy": "127.0.0.1,localhost",
                "NO_PROXY": "127.0.0.1,localhost"})
    env.update(extra or {})
    return env


@contextmanager
def serve_app(args: Sequence[str], env: dict[str, str] | None = None, timeout_s: float = 600,
              port: int | None = None) -> Iterator[AppServer]:
    """Run ``python app.py ARGS --port FREE`` (or ``port``) and yield once its page answers; stop it afterwards."""
    port = port or free_port()
    process = subprocess.Popen([sys.executable, str(ROOT / "app.py"), *args, "--host", "127.0.0.1", "--port", str(port)],
                               cwd=ROOT, env=_env(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    server = AppServer(f"http://127.0.0.1:{port}", process)
    threading.Thread(target=_pump, args=(process, server.lines), daemon=True).start()
    try:
        _wait_until_up(server, timeout_s)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def chromium() -> Iterator[object]:
    """A headless Chromium browser (Playwright, a test dependency)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def wait_for_line(server: AppServer, needle: str, timeout_s: float = 600) -> str:
    """The first line of the app's console output containing ``needle`` (waits for it)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = next((line for line in list(server.lines) if needle in line), None)
        if found is not None:
            return found
        if server.process.poll() is not None:
            raise RuntimeError(f"app.py exited with {server.process.returncode}:\n{server.output}")
        time.sleep(0.5)
    raise TimeoutError(f"no line with {needle!r} within {timeout_s}s:\n{server.output}")


def _wait_until_up(server: AppServer, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"app.py exited with {server.process.returncode}:\n{server.output}")
        try:
            with _DIRECT.open(server.url + "/config", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise TimeoutError(f"app.py did not serve within {timeout_s}s:\n{server.output}")
