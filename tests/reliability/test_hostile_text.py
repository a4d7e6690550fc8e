"""Text a target chose, shown safely: control characters and lone surrogates in a result (an image tag, an HTTP
body, an object name) never reach the terminal as escape sequences, never make junit.xml unreadable, and never
stop a report from being written.

Found by hand: an image tag holding ``\\x01\\x1b[31m`` (legal in double-quoted YAML) made the in-process runner's
junit.xml invalid XML ("not well-formed (invalid token)"), put a raw ESC in report.html, and, through pytest,
recoloured the terminal in the short summary's ERROR line.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
import yaml

from nimwarden.printable import visible
from nimwarden.report.evidence_html import e
from nimwarden.report.junit import escape, quoteattr, write_junit
from tests.conftest import ROOT, run_audit

HOSTILE_TAG = "1.3.3\\x01\\x1b[31m\\x9b"  # as written in double-quoted YAML: SOH, ESC [31m (red), C1 CSI


def _review(tmp_path):
    rendered = tmp_path / "rendered"
    rendered.mkdir()
    text = (ROOT / "targets" / "rendered" / "nim-llm.yaml").read_text()
    old = "image: nvcr.io/nim/meta/llama-3.1-8b-instruct:1.3.3"
    assert old in text
    (rendered / "nim-llm.yaml").write_text(text.replace(old, f'image: "nvcr.io/nim/meta/llama-3.1-8b-instruct:{HOSTILE_TAG}"'))
    profile = yaml.safe_load((ROOT / "targets" / "helm-review.yaml").read_text())
    profile["kubernetes"]["paths"] = [str(rendered)]
    path = tmp_path / "review.yaml"
    path.write_text(yaml.safe_dump(profile))
    return path


@pytest.mark.parametrize("runner", ["in-process", "pytest"])
def test_a_targets_control_characters_are_shown_not_passed_on(tmp_path, runner):
    env = {"PYTEST_ADDOPTS": "-q -rfE"} if runner == "pytest" else {}
    proc, summary = run_audit(_review(tmp_path), tmp_path / "reports", env=env, timeout=180)
    assert proc.returncode == 1 and summary is not None, proc.stderr[-2000:]
    engine = next(r for r in summary["results"] if r["control"] == "NIM-ENGINECVE-001")
    assert "\x1b[31m" in engine["reason"]  # summary.json keeps what was seen (JSON escapes it)
    out = proc.stdout + proc.stderr
    assert "\x1b" not in out and "\x9b" not in out and "\x01" not in out
    if runner == "pytest":
        assert "1.3.3\\x01\\x1b[31m\\x9b" in out  # the short summary shows the tag, escaped
    run = tmp_path / "reports" / "latest"
    tree = ET.parse(run / "junit.xml")  # well-formed
    assert any("\\x1b[31m" in (el.text or "") + " ".join(el.attrib.values()) for el in tree.iter())
    html = (run / "report.html").read_text()
    assert "\x1b" not in html and "\x01" not in html and "1.3.3\\x01\\x1b[31m" in html
    json.loads((run / "report.sarif").read_text())


def test_visible_escapes_what_xml_and_terminals_cannot_take():
    assert visible("plain\ttext\nand more\r") == "plain\ttext\nand more\r"
    assert visible("a\x00b\x1b[2Jc\x7f\x85\ud800\uffff") == "a\\x00b\\x1b[2Jc\\x7f\\x85\\ud800\\uffff"
    for text in ("\x01<&>\"'", "\ud83d lone", "\x0c"):
        ET.fromstring(f"<a b={quoteattr(text)}>{escape(text)}</a>")  # well-formed, and encodable as UTF-8
        assert e(text).encode("utf-8")


def test_junit_with_a_lone_surrogate_and_controls_is_written_and_reads(tmp_path):
    result = {"control": "X-001", "family": "tls", "severity": "high", "title": "t", "deployment": "d", "subject": "s\ud800",
              "status": "fail", "reason": "body said \x00\x1b]0;owned\x07", "evidence": {}, "nodeid": "suites/x.py::t[d]"}
    write_junit(tmp_path, {"target": "t", "results": [result], "totals": {"fail": 1}, "started_at": "", "finished_at": ""})
    text = (tmp_path / "junit.xml").read_text(encoding="utf-8")
    ET.fromstring(text)
    assert "\\x1b]0;owned\\x07" in text
