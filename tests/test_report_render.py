"""The monthly report's HTML as a browser draws it: headless Chromium takes a screenshot,
which must exist and not be blank.

Needs Chromium (Debian/Ubuntu: apt-get install -y chromium). Without it the test fails
and says so: CI installs it, and a report nobody has seen rendered is not tested."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image

from bot.config import parse_routing
from bot.report import build_report, write_report
from bot.store import Store
from tests.test_digest import ROUTING_YAML, add_message, wib

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WIDTH, HEIGHT = 1200, 3000


def find_chromium() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("Chromium not found (looked for: " + ", ".join(BROWSERS) + "). Install the apt package "
                "'chromium' (apt-get update && apt-get install -y chromium) to render the monthly report.",
                pytrace=False)


def screenshot(browser: str, page: Path, out: Path, profile: Path) -> None:
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
               f"--user-data-dir={profile}", f"--screenshot={out}", f"--window-size={WIDTH},{HEIGHT}",
               page.resolve().as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and out.exists(), f"chromium failed ({done.returncode}):\n{done.stderr[-2000:]}"


@pytest.mark.slow  # starts a browser
def test_report_html_renders_in_chromium(tmp_path: Path) -> None:
    browser = find_chromium()
    routing = parse_routing(ROUTING_YAML)
    store = Store(tmp_path / "triage.db")
    for day in range(3, 29):
        add_message(store, routing, account="kemensos", unit="linjamsos", labels=["complaint"],
                    text=f"bansos PKH tahap {day % 3} belum cair sampai sekarang", received=wib(day, 9),
                    resolved=wib(day, 15) if day % 4 else None)
        add_message(store, routing, account="kemendag", unit="pdn", labels=["question", "negative"],
                    text="harga minyak goreng kok naik terus", received=wib(day, 10), acknowledged=wib(day, 11))
        add_message(store, routing, account="kemendag", labels=["spam"], text="slot gacor", received=wib(day, 20))
    html_path, _ = write_report(build_report(store, routing, "2025-03", now=wib(1, 9, month=4)), tmp_path)
    store.close()

    shot = tmp_path / "report.png"
    screenshot(browser, html_path, shot, tmp_path / "profile")
    pixels = image.imread(shot)
    assert pixels.shape[:2] == (HEIGHT, WIDTH)
    rgb = (pixels[..., :3] * 255).astype(np.uint8).reshape(-1, 3)
    colours = np.unique(rgb, axis=0)
    # A blank or error page has a handful of colours; text and charts give hundreds.
    assert len(colours) > 200, f"the screenshot looks blank: {len(colours)} distinct colours"
    background = np.all(rgb == rgb[0], axis=1).mean()
    assert background < 0.9, f"{background:.0%} of the screenshot is one colour"
