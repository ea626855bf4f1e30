"""The sweep report page opened in a real headless Chromium: it renders, its contents links resolve, every
image decodes, and the screenshot shows the page (not a blank or error page). Skipped without Chromium
(`apt-get install chromium`)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bsbench.report.style import KNOWN_COLORS

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")

# Appended to a copy of the page: after load, write what the browser decoded into the DOM for --dump-dom.
CHECK_SCRIPT = """<script>window.addEventListener('load', function () {
  var imgs = Array.from(document.images);
  var links = Array.from(document.querySelectorAll('nav.toc a'));
  var r = document.createElement('div');
  r.id = 'bsbench-check';
  r.setAttribute('data-images', imgs.length);
  r.setAttribute('data-decoded', imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length);
  r.setAttribute('data-links', links.length);
  r.setAttribute('data-targets', links.filter(function (a) {
    return document.getElementById(a.getAttribute('href').slice(1)) !== null; }).length);
  document.body.appendChild(r);
});</script>"""


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium with nothing reaching the network and a throwaway profile."""
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def test_every_image_decodes_and_every_contents_link_resolves(tmp_path, sweep_report_page):
    page = sweep_report_page.read_text()
    checked = tmp_path / "check.html"
    checked.write_text(page.replace("</body>", CHECK_SCRIPT + "</body>"))
    dom = chromium(tmp_path, "--dump-dom", checked.as_uri()).stdout
    found = re.search(r'<div id="bsbench-check" data-images="(\d+)" data-decoded="(\d+)" data-links="(\d+)" '
                      r'data-targets="(\d+)">', dom)
    assert found, dom[-2000:]
    images, decoded, links, targets = map(int, found.groups())
    assert images == page.count("<img ") == 14 and decoded == images
    assert links == page.count("<li><a href='#") == 6 and targets == links
    assert "<h1>bsbench sweep report</h1>" in dom


def test_screenshot_shows_the_page_in_the_scheduler_colours(tmp_path, sweep_report_page):
    from PIL import Image

    shot = tmp_path / "report.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,4000", sweep_report_page.as_uri())
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=int)
    assert pixels.shape == (4000, 1280, 3)
    not_white = (pixels.min(axis=2) < 235).mean()
    assert 0.05 < not_white < 0.9, not_white  # text, tables and plots; neither blank nor an error colour fill
    for name in ("static", "continuous"):  # lines, bars and table swatches of the first group in their colour
        rgb = np.array([int(KNOWN_COLORS[name][i:i + 2], 16) for i in (1, 3, 5)])
        assert (np.abs(pixels - rgb).max(axis=2) <= 8).sum() > 500, name
