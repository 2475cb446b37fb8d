"""The acceptance report in a real browser: headless Chromium renders it, and the verdict,
the tables and the plots are on screen.

Skipped, with the reason, only where no Chromium is installed (Debian: apt-get install -y chromium).
"""

import html
import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from tests.selftests.conftest import SUITE_TOTAL, expect_suite

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install -y chromium); "
                                                          "the browser check of acceptance.html needs it")

#: fills the latency section by hand (the shapes the latency tests record) so its table and plots render
LATENCY_FILLER = '''
from tests.selftests.reporting_samples import latency_stats

def test_fill_latency_section(results, device):
    results.latency.record(latency_stats("cpu", "host CPU", 30.0, 0.5))
    results.latency.record(latency_stats(device.label, device.name, 10.0, 0.3, p99_available=False))
    results.latency.speedup = 3.0
'''

#: runs after the page's own scripts: where each part is, whether it is visible, and any script error
PROBE = """
<script>
const errors = [];
window.addEventListener('error', (event) => errors.push(String(event.message)));
window.addEventListener('load', () => {
  const seen = (element) => {
    if (!element) return null;
    const box = element.getBoundingClientRect(), style = getComputedStyle(element);
    return {visible: box.width > 0 && box.height > 0 && style.display !== 'none' && style.visibility !== 'hidden',
            top: box.top + window.scrollY, rows: element.querySelectorAll('tr').length,
            text: element.innerText.slice(0, 2000)};
  };
  const probe = {errors};
  for (const id of ['dinov3-verdict', 'dinov3-accuracy', 'dinov3-latency', 'dinov3-provenance', 'environment',
                    'results-table', 'title']) probe[id] = seen(document.getElementById(id));
  probe.plots = [...document.querySelectorAll('img.dinov3-plot')].map(
      (img) => ({alt: img.alt, complete: img.complete, width: img.naturalWidth, shown: seen(img).visible}));
  probe.testRows = document.querySelectorAll('#results-table tbody.results-table-row').length;
  probe.rowFigures = [...document.querySelectorAll('#results-table .extraHTML .dinov3-metrics')].map(
      (extra) => extra.textContent);
  const out = document.createElement('pre');
  out.id = 'dinov3-probe';
  out.textContent = JSON.stringify(probe);
  document.body.appendChild(out);
});
</script>
"""

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run")


def chromium(tmp_path, *args):
    profile = tmp_path / "chromium-profile"
    done = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_report_renders_in_chromium(run_suite, tiny_checkpoint, tmp_path):
    # a real run (CPU, tiny checkpoint) plus a hand-filled latency section
    filler = tmp_path / "extra" / "test_fill_latency.py"
    filler.parent.mkdir()
    filler.write_text(LATENCY_FILLER)
    expect_suite(run_suite("--model-path", str(tiny_checkpoint), "--device", "cpu", str(filler)), passed=1)
    rendered_report = tmp_path / "reports" / "acceptance.html"

    page = rendered_report.read_text()
    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("</body>", PROBE + "</body>"))
    dom = chromium(tmp_path, "--virtual-time-budget=10000", "--dump-dom", probed.as_uri())
    found = re.search(r'<pre id="dinov3-probe">(.*?)</pre>', dom, re.S)
    assert found, "the probe did not run: the page never finished loading"
    probe = json.loads(html.unescape(found.group(1)))

    assert probe["errors"] == []
    for part in ("title", "dinov3-verdict", "dinov3-accuracy", "dinov3-latency", "dinov3-provenance", "environment",
                 "results-table"):
        assert probe[part] and probe[part]["visible"], f"{part} not visible: {probe[part]}"
    assert "DINOv3 ViT/16 (hidden 64, 2 layers) (checkpoint, architecture-only) on cpu" in probe["title"]["text"]
    verdict = probe["dinov3-verdict"]
    assert verdict["text"].startswith("NOT VALID FOR SIGN-OFF")
    assert verdict["top"] < probe["environment"]["top"], "the verdict must come before the environment table"
    assert verdict["top"] < 250, f"the verdict is {verdict['top']}px down the page, not at the top"
    assert probe["dinov3-accuracy"]["rows"] == 3  # header + two output tensors
    assert "last_hidden_state" in probe["dinov3-accuracy"]["text"]
    assert probe["dinov3-latency"]["rows"] >= 10 and "3.00x" in probe["dinov3-latency"]["text"]
    assert "Device under test" in probe["environment"]["text"] and "Versions" in probe["environment"]["text"]
    assert probe["testRows"] == SUITE_TOTAL + 1  # the suite and the filler
    # each test's recorded figures sit in its row (accuracy x2, consistency x2, smoke test, shapes x4, operator profile,
    # the input set x4)
    assert len(probe["rowFigures"]) == 14, probe["rowFigures"]
    assert sum("relative_error" in figures and "min_cosine" in figures for figures in probe["rowFigures"]) == 2
    assert [(plot["alt"], plot["complete"], plot["shown"]) for plot in probe["plots"]] == [
        ("latency distribution", True, True), ("CPU vs device", True, True), ("Operator kinds", True, True),
        ("error against depth", True, True),
        ("Throughput vs batch", True, True), ("Latency vs resolution", True, True)]  # the quick sweep
    assert all(plot["width"] > 300 for plot in probe["plots"])

    # and on screen: NOT VALID FOR SIGN-OFF is drawn on #e65100 near the top of the page
    shot = tmp_path / "acceptance.png"
    chromium(tmp_path, "--window-size=1280,900", "--hide-scrollbars", f"--screenshot={shot}", rendered_report.as_uri())
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.int16)
    assert pixels.shape == (900, 1280, 3)
    red, green, blue = pixels[:300, :, 0], pixels[:300, :, 1], pixels[:300, :, 2]
    banner = int(((abs(red - 0xE6) < 12) & (abs(green - 0x51) < 12) & (blue < 24)).sum())
    assert banner > 50_000, f"only {banner} banner-coloured pixels in the top 300 px of the screenshot"
