"""Open a report in headless Chromium (Debian package `chromium`), inside a network namespace with only loopback, so
a page that tried to fetch anything from outside could not: take a screenshot, and load a copy with a tiny probe
script that writes every image's decoded size into the DOM, which --dump-dom then shows."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--enable-logging=stderr",
         "--v=0", "--virtual-time-budget=5000"]
PROBE = ("<script>addEventListener('load',()=>{document.body.dataset.bfImages=[...document.images].map("
         "i=>i.complete?i.naturalWidth+'x'+i.naturalHeight:'pending').join(',')})</script>")


def chromium_binary() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _chromium(binary: str, args: list[str], timeout: float = 90) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="bf-chromium-") as profile:
        script = "ip link set lo up && exec \"$@\""
        return subprocess.run(["unshare", "--net", "sh", "-c", script, "sh", binary, *FLAGS,
                               f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=timeout)


def console_messages(stderr: str, page: str) -> list[str]:
    """Messages the page logged to its console (JS errors show up as "Uncaught ..."); Chromium's own chrome://
    pages log there too, so only lines naming the page count."""
    return [line for line in stderr.splitlines()
            if (":CONSOLE" in line or "Uncaught" in line) and "source: chrome://" not in line
            and (page in line or "source: file://" in line or "Uncaught" in line)]


def open_report(html: Path, screenshot: Path) -> dict:
    """Screenshot `html` and measure its images in the browser; returns what the test checks."""
    binary = chromium_binary()
    if binary is None:
        raise FileNotFoundError("chromium is not installed: apt-get install -y chromium")
    shot = _chromium(binary, ["--window-size=1280,2400", f"--screenshot={screenshot}", html.resolve().as_uri()])
    probe = html.with_name(".chromium-probe.html")
    probe.write_text(html.read_text().replace("</body>", PROBE + "</body>"))
    try:
        dom = _chromium(binary, ["--dump-dom", probe.resolve().as_uri()])
    finally:
        probe.unlink(missing_ok=True)
    found = re.search(r'data-bf-images="([^"]*)"', dom.stdout)
    sizes = [tuple(int(x) for x in s.split("x")) if "x" in s else (0, 0)
             for s in (found.group(1).split(",") if found and found.group(1) else [])]
    return {"screenshot_rc": shot.returncode, "dom_rc": dom.returncode, "images": sizes, "dom": dom.stdout,
            "console": console_messages(shot.stderr, html.name) + console_messages(dom.stderr, probe.name),
            "probe_ran": found is not None}
