"""report.html in a real headless browser (Debian chromium, driven over the DevTools protocol).

Checks what only a browser can: the page's own script runs under its CSP with no
console error, the filters hide and show rows, a URL hash presets them, and the
page prints (print media hides the filter form; printToPDF yields a PDF).
"""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from nimwarden.report.html import write_html
from tests.unit.report_samples import lab_summary, many_deployments

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="needs a headless Chromium: Debian package 'chromium' (apt-get install -y chromium)"
)


class DevTools:
    """A minimal DevTools-protocol client over the page's websocket (loopback only)."""

    def __init__(self, ws_url: str):
        import websocket  # websocket-client, a dependency of the kubernetes client

        self.ws = websocket.create_connection(ws_url, timeout=15, suppress_origin=True)
        self.ids = itertools.count(1)
        self.events: list[dict] = []

    def call(self, method: str, **params):
        msg_id = next(self.ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)
        raise TimeoutError(method)

    def wait_event(self, name: str, timeout: float = 15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i, e in enumerate(self.events):
                if e.get("method") == name:
                    return self.events.pop(i)
            self.events.append(json.loads(self.ws.recv()))
        raise TimeoutError(name)

    def js(self, expression: str):
        out = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in out:
            raise AssertionError(f"{expression}: {out['exceptionDetails']}")
        return out["result"].get("value")

    def problems(self) -> list[str]:
        found = []
        for e in self.events:
            method, params = e.get("method"), e.get("params", {})
            if method == "Runtime.exceptionThrown":
                found.append(json.dumps(params.get("exceptionDetails", {}))[:300])
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append(json.dumps(params.get("args", []))[:300])
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                found.append(params["entry"].get("text", "")[:300])
        return found


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    """One browser for the module: starting Chromium costs seconds on a small machine."""
    profile = tmp_path_factory.mktemp("chromium-profile")
    proc = subprocess.Popen(
        [
            CHROMIUM,
            "--headless=new",
            "--no-sandbox",  # tests run as root in CI containers, where the sandbox cannot start
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"chromium did not start (exit {proc.poll()})")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
            pages = [p for p in json.load(resp) if p.get("type") == "page"]
        tools = DevTools(pages[0]["webSocketDebuggerUrl"])
        for domain in ("Page", "Runtime", "Log"):
            tools.call(f"{domain}.enable")
        yield tools
        tools.ws.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def browser(chromium):
    chromium.events.clear()  # each test judges only what its own page logged
    chromium.call("Emulation.setEmulatedMedia", media="")
    return chromium


def _open(browser: DevTools, url: str) -> None:
    browser.call("Page.navigate", url=url)
    browser.wait_event("Page.loadEventFired")


VISIBLE = "[...document.querySelectorAll('details.result')].filter(r => !r.hidden)"


def test_report_renders_without_console_errors_and_filters_work(browser, tmp_path):
    summary = lab_summary()
    url = Path(write_html(tmp_path, summary)).as_uri()
    _open(browser, url)
    assert browser.js("document.documentElement.getAttribute('data-report-ready')") == "1"
    assert browser.problems() == []

    total = len(summary["results"])
    passes = sum(r["status"] == "pass" for r in summary["results"])
    assert browser.js(f"{VISIBLE}.length") == total
    assert browser.js("[...document.querySelectorAll('.verdict h3')].map(h => h.firstChild.textContent.trim())") == [
        "hardened",
        "exposed",
    ]

    browser.js("document.querySelector('input[data-filter=status][value=pass]').click()")
    assert browser.js(f"{VISIBLE}.length") == total - passes
    assert "pass" not in browser.js(f"{VISIBLE}.map(r => r.dataset.status)")
    assert browser.js("document.getElementById('shown-count').textContent") == f"{total - passes} of {total} results shown"

    browser.js("document.querySelector('input[data-filter=deployment][value=hardened]').click()")
    assert set(browser.js(f"{VISIBLE}.map(r => r.dataset.deployment)")) == {"exposed"}

    browser.js("document.querySelector('input[data-filter=status][value=pass]').click()")
    browser.js("document.querySelector('input[data-filter=deployment][value=hardened]').click()")
    assert browser.js(f"{VISIBLE}.length") == total

    browser.js("const t = document.getElementById('filter-text'); t.value = 'NETPOL'; t.dispatchEvent(new Event('input'))")
    assert set(browser.js(f"{VISIBLE}.map(r => r.querySelector('.control').textContent)")) == {"NETPOL-INGRESS-001"}

    browser.js("document.getElementById('filter-reset').click()")
    assert browser.js(f"{VISIBLE}.length") == total
    browser.js("document.querySelector('td.cell[data-family=tls][data-deployment=exposed]').click()")
    assert browser.js(f"{VISIBLE}.map(r => r.dataset.family + '/' + r.dataset.deployment)") == ["tls/exposed"]
    assert browser.problems() == []


def test_url_hash_presets_filters(browser, tmp_path):
    summary = lab_summary()
    url = Path(write_html(tmp_path, summary)).as_uri()
    _open(browser, url + "#status=fail,error&family=tls,host")
    shown = browser.js(f"{VISIBLE}.map(r => r.dataset.family + '/' + r.dataset.status)")
    expected = sorted(
        f"{r['family']}/{r['status']}"
        for r in summary["results"]
        if r["status"] in ("fail", "error") and r["family"] in ("tls", "host")
    )
    assert sorted(shown) == expected and len(expected) == 2
    assert browser.problems() == []


def test_report_prints(browser, tmp_path):
    url = Path(write_html(tmp_path, lab_summary())).as_uri()
    _open(browser, url)
    browser.call("Emulation.setEmulatedMedia", media="print")
    assert browser.js("getComputedStyle(document.getElementById('filters')).display") == "none"
    assert browser.js("document.querySelectorAll('details.result:not([open])').length") > 0
    pdf = base64.b64decode(browser.call("Page.printToPDF", printBackground=True)["data"])
    assert pdf.startswith(b"%PDF") and len(pdf) > 10_000
    # paper cannot expand a row: printing opened every shown result
    assert browser.js("document.querySelectorAll('details.result:not([open])').length") == 0
    assert browser.problems() == []


def test_sign_off_page_prints_to_pdf(browser, tmp_path):
    from nimwarden.report.sign_off import write_sign_off

    (tmp_path / "summary.json").write_text(json.dumps(lab_summary()), encoding="utf-8")
    _open(browser, write_sign_off(tmp_path, lab_summary()).as_uri())
    assert browser.problems() == []
    assert browser.js("document.querySelectorAll('.sign .line').length") == 4
    pdf = base64.b64decode(browser.call("Page.printToPDF", preferCSSPageSize=True)["data"])
    assert pdf.startswith(b"%PDF") and len(pdf) > 5_000


@pytest.mark.parametrize("n", [1, 3, 20])
def test_report_scales_worst_first_without_running_off_the_page(browser, tmp_path, n):
    """1, 3 and 20 deployments in a 1280×900 window: nothing runs off sideways, the worst deployments
    lead the table, and at 20 the cards and the full matrix wait behind toggles. Screenshots go to
    $NIMWARDEN_SCREENSHOTS when set (to look at), else to the test's directory."""
    import os

    summary = many_deployments(n)
    url = Path(write_html(tmp_path, summary)).as_uri()
    browser.call("Emulation.setDeviceMetricsOverride", width=1280, height=900, deviceScaleFactor=1, mobile=False)
    try:
        _open(browser, url)
        assert browser.problems() == []
        where = Path(os.environ.get("NIMWARDEN_SCREENSHOTS") or tmp_path)
        where.mkdir(parents=True, exist_ok=True)

        def shot(name: str) -> None:
            png = base64.b64decode(browser.call("Page.captureScreenshot", format="png")["data"])
            assert png.startswith(b"\x89PNG")
            (where / f"report-{n}-deployments{name}.png").write_bytes(png)

        shot("")  # the first screen, as a release manager opens it
        matrix_open = browser.js("document.querySelector('#matrix details').open")
        browser.js("document.querySelector('#matrix details').open = true; document.getElementById('matrix').scrollIntoView()")
        shot("-matrix")
        assert browser.js("document.documentElement.scrollWidth") <= 1280  # the opened matrix too
        assert browser.js("[...document.querySelectorAll('table')].every(t => t.getBoundingClientRect().right <= 1280)")
        rows = browser.js("[...document.querySelectorAll('#worst tr.dep-row')].map(r => r.dataset.deployment)")
        if n == 1:
            assert rows == []  # one deployment: its card says it all
            assert matrix_open is True
        else:
            # worst first: by verdict, then critical, high, medium, low failures, then errors
            cells = browser.js("[...document.querySelectorAll('#worst tr.dep-row')].map(r => [...r.cells].slice(3, 8)"
                               ".map(c => parseInt(c.textContent || '0')))")
            assert len(rows) == n and cells == sorted(cells, reverse=True), cells
            assert cells[0][:4] != [0, 0, 0, 0]  # a deployment with failures leads
            assert browser.js("document.getElementById('worst').getBoundingClientRect().top") < 900  # on the first screen
            assert matrix_open is (n <= 4)
            assert browser.js("!!document.querySelector('#verdicts details')") is (n > 4)
            browser.js(f"document.querySelector('td.dep-link[data-deployment=\"{rows[0]}\"]').click()")
            assert set(browser.js(f"{VISIBLE}.map(r => r.dataset.deployment)")) == {rows[0]}
    finally:
        browser.call("Emulation.clearDeviceMetricsOverride")
