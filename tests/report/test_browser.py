"""The report in a real browser: headless Chromium decodes every image, runs the page's
script without an error, sorts a table on a click, and renders a screenshot.

Needs Debian's ``chromium`` (``.ci/run`` installs it); skips with a reason where it is absent.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from modalens.report import build_report

CHROMIUM = next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium installed (Debian package chromium; .ci/run installs it)"
)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]

# installed before the page's own script: collects uncaught errors
BEFORE = (
    "<script>window.__errors=[];window.addEventListener('error',function(e){"
    "window.__errors.push(String(e.message||e));});</script>"
)
# run after load: image decoding, one click on a numeric column header, the result as JSON
AFTER = """<script>window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var broken = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); });
  var sortedOk = null, column = null, table = null, heads = null;
  var tables = document.querySelectorAll('table.sortable');
  for (var t = 0; t < tables.length && column === null; t++) {
    var rows = tables[t].tBodies[0].rows;
    if (rows.length < 3) continue;
    heads = tables[t].querySelectorAll('thead th');
    for (var c = 0; c < heads.length && column === null; c++) {
      var all = true;
      for (var r = 0; r < rows.length; r++) {
        if (!rows[r].cells[c].classList.contains('num')) all = false;
      }
      if (all) { column = c; table = tables[t]; }
    }
  }
  function values() {
    return Array.prototype.map.call(table.tBodies[0].rows, function (r) {
      return parseFloat(r.cells[column].getAttribute('data-sort')); });
  }
  if (column !== null) {
    heads[column].click(); var up = values();
    heads[column].click(); var down = values();
    sortedOk = up.every(function (v, i) { return i === 0 || up[i - 1] <= v; }) &&
               down.every(function (v, i) { return i === 0 || down[i - 1] >= v; });
  }
  var out = document.createElement('pre'); out.id = '__probe';
  out.textContent = JSON.stringify({images: imgs.length, broken: broken.length,
    errors: window.__errors, column: column, sorted: sortedOk,
    sections: document.querySelectorAll('main > section').length});
  document.body.appendChild(out);
});</script>"""


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _probe(text: str, tmp_path: Path) -> dict:
    """Load ``text`` with the probe scripts in Chromium and return what the probe saw."""
    probe = tmp_path / "probe.html"
    probe.write_text(
        text.replace("<head>", "<head>" + BEFORE, 1).replace("</body>", AFTER + "</body>", 1)
    )
    done = _chromium(
        "--virtual-time-budget=10000", "--dump-dom", probe.as_uri(), profile=tmp_path / "profile"
    )
    found = re.search(r'<pre id="__probe">(.*?)</pre>', done.stdout, re.S)
    assert found, f"the probe did not run: {done.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1)))


def test_probe_sees_broken_images_script_errors_and_unsorted_tables(tmp_path: Path) -> None:
    rows = "".join(f'<tr><td class="num" data-sort="{v}">{v}</td></tr>' for v in (3, 1, 2))
    page = (
        "<html><head></head><body><section><img src='data:image/png;base64,AAAA'>"
        f"<table class='sortable'><thead><tr><th>x</th></tr></thead><tbody>{rows}</tbody>"
        "</table></section><script>undefinedFunction();</script></body></html>"
    )
    state = _probe(page, tmp_path)
    assert state["broken"] == 1
    assert len(state["errors"]) == 1 and "undefinedFunction" in state["errors"][0]
    assert state["sorted"] is False  # no sorting script on this page: clicks change nothing


def test_report_renders_in_chromium(results: Path, tmp_path: Path) -> None:
    page = build_report(results, out=tmp_path / "report.html")
    text = page.read_text()
    state = _probe(text, tmp_path)
    assert state["errors"] == []
    assert state["images"] == text.count("<img ") and state["images"] >= 1
    assert state["broken"] == 0
    assert state["sections"] == text.count("<section ")  # the DOM holds every section
    assert state["column"] is not None and state["sorted"] is True

    shot = tmp_path / "report.png"
    _chromium(
        "--window-size=1280,2000",
        f"--screenshot={shot}",
        page.as_uri(),
        profile=tmp_path / "profile2",
    )
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1280, 2000)
    assert len(data) > 20_000  # a rendered page, not a blank one


def test_report_of_every_study_renders_in_chromium(tmp_path: Path) -> None:
    studies = Path(__file__).parent / "fixtures" / "studies"
    folder = tmp_path / "studies"
    shutil.copytree(studies, folder)
    text = build_report(folder).read_text()
    state = _probe(text, tmp_path)
    assert state["errors"] == []
    assert state["broken"] == 0 and state["images"] == 1
    assert state["sections"] == text.count("<section ")
    assert state["sorted"] is True
