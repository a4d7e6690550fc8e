"""junit.xml and allure-results/ from summary.json, for runs without pytest (nimwarden.runner).

Under pytest these come from pytest's junitxml and allure-pytest plugins; the in-process runner
writes the same artifacts from the results: one testcase per result (failure for fail, error for
error, skipped for skip / not_applicable / waived), and one Allure result file per judged result with
the labels the plugin sets (epic = family, feature = control, story = deployment, severity).

What did not apply is one skipped Allure result per deployment and family, naming every control and
why: a manifests-only repository audit has two not-applicable results for each judged one (the
endpoint controls of deployments that declare no endpoints), and one file each made Allure's view
two-thirds noise and made creating the files, at 100 µs each on a busy disk, the largest part of the
run. summary.json and junit.xml still hold every not-applicable result, one by one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from collections.abc import Mapping
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape as _escape
from xml.sax.saxutils import quoteattr as _quoteattr

from nimwarden.printable import UNSAFE_CHARS, visible
from nimwarden.report.grouped import by_reason

ALLURE_SEVERITY = {"critical": "blocker", "high": "critical", "medium": "normal", "low": "minor", "info": "trivial"}
ALLURE_STATUS = {"pass": "passed", "fail": "failed", "error": "broken", "skip": "skipped", "not_applicable": "skipped", "waived": "skipped"}


# what the escapers change, and what XML 1.0 cannot hold at all (printable.UNSAFE: a target's control characters)
_ATTR_SPECIAL = re.compile(f"[&<>\"\n\r\t{UNSAFE_CHARS}]")
_TEXT_SPECIAL = re.compile(f"[&<>{UNSAFE_CHARS}]")


def quoteattr(value: str) -> str:
    """``xml.sax.saxutils.quoteattr`` of ``visible(value)``; most values hold nothing to escape, and a search finds
    that in C."""
    return f'"{value}"' if _ATTR_SPECIAL.search(value) is None else _quoteattr(visible(value))


def escape(value: str) -> str:
    """``xml.sax.saxutils.escape`` of ``visible(value)``, with the same shortcut."""
    return value if _TEXT_SPECIAL.search(value) is None else _escape(visible(value))


def _case(r: Mapping[str, Any]) -> str:
    nodeid = str(r.get("nodeid") or f"{r.get('control')}[{r.get('deployment')}]")
    path, _, name = nodeid.partition("::")
    classname = path.removesuffix(".py").replace("/", ".")
    head = f'<testcase classname={quoteattr(classname)} name={quoteattr(name or nodeid)} time="{float(r.get("duration_s") or 0):.3f}"'
    reason = escape(str(r.get("reason") or ""))
    status = r.get("status")
    if status == "fail":
        return f'{head}><failure message={quoteattr(str(r.get("reason") or "")[:500])}>{reason}</failure></testcase>'
    if status == "error":
        return f'{head}><error message={quoteattr(str(r.get("reason") or "")[:500])}>{reason}</error></testcase>'
    if status in ("skip", "not_applicable", "waived"):
        return f'{head}><skipped message={quoteattr(f"{status}: " + str(r.get("reason") or "")[:480])}/></testcase>'
    return f"{head}/>"


def write_junit(run_dir: Path, summary: Mapping[str, Any]) -> Path:
    """One test case per result, written as they are made (the text of a repository audit's 200,000 cases at once
    was the largest part of its writer's memory)."""
    results = list(summary.get("results") or [])
    count = lambda *s: sum(1 for r in results if r.get("status") in s)  # noqa: E731
    total = sum(float(r.get("duration_s") or 0) for r in results)
    path = Path(run_dir) / "junit.xml"
    with open(path, "w", encoding="utf-8") as out:
        out.write('<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="nimwarden" '
                  f'errors="{count("error")}" failures="{count("fail")}" skipped="{count("skip", "not_applicable", "waived")}" '
                  f'tests="{len(results)}" time="{total:.3f}">')
        for start in range(0, len(results), 1000):
            out.write("".join(_case(r) for r in results[start:start + 1000]))
        out.write("</testsuite></testsuites>\n")
    return path


def write_allure_results(run_dir: Path, summary: Mapping[str, Any]) -> Path:
    """One ``<uuid>-result.json`` (Allure's format) per judged result, and one per deployment and family for the
    controls that did not apply (see above). Written with plain os calls and made from a
    template (the text json's encoder writes for the same document): a repository audit writes a hundred
    thousand of them, and pathlib's write_text, a dict through the encoder and a random uuid from the
    kernel for each cost several times more per file. The uuids are one random uuid4 per run with the
    result's index added to its last group: unique, and as random across runs."""
    out = Path(run_dir) / "allure-results"
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*-result.json"):  # an earlier attempt in this run folder (a writer beside that died): not twice
        stale.unlink()
    encode = json.JSONEncoder(default=str).encode
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    first = str(uuid.uuid4())
    head, node = first[:24], int(first[24:], 16)

    def v(value: Any) -> str:
        return encode_basestring_ascii(value) if isinstance(value, str) else encode(value)

    judged, not_applicable = _split(summary.get("results") or [])
    for i, r in enumerate(judged):
        nodeid = str(r.get("nodeid") or "")
        name = f"{head}{(node + i) & 0xFFFFFFFFFFFF:012x}"
        feature = f"{r.get('control')} {r.get('title')}"
        doc = (f'{{"uuid": "{name}", "historyId": "{hashlib.md5(nodeid.encode()).hexdigest()}", '  # noqa: S324 - an id, not security
               f'"name": {v(nodeid.partition("::")[2] or nodeid)}, "fullName": {v(nodeid)}, '
               f'"status": {v(ALLURE_STATUS.get(str(r.get("status")), "unknown"))}, "statusDetails": {{"message": {v(str(r.get("reason") or ""))}}}, '
               f'"labels": [{{"name": "epic", "value": {v(r.get("family"))}}}, {{"name": "feature", "value": {v(feature)}}}, '
               f'{{"name": "story", "value": {v(r.get("deployment"))}}}, {{"name": "tag", "value": {v(r.get("control"))}}}, '
               f'{{"name": "severity", "value": {v(ALLURE_SEVERITY.get(str(r.get("severity")), "normal"))}}}], '
               f'"description": {v(str(r.get("remediation") or ""))}}}')
        _write(out, name, doc, flags)
    for j, ((deployment, family), items) in enumerate(not_applicable.items(), start=len(judged)):
        name = f"{head}{(node + j) & 0xFFFFFFFFFFFF:012x}"
        _write(out, name, encode(_not_applicable_doc(name, deployment, family, items)), flags)
    return out


def _split(results: list) -> tuple[list, dict[tuple[Any, Any], list]]:
    """(the judged results, the not-applicable ones by deployment and family, in the results' order)."""
    judged, not_applicable = [], {}
    for r in results:
        if r.get("status") == "not_applicable":
            not_applicable.setdefault((r.get("deployment"), r.get("family")), []).append(r)
        else:
            judged.append(r)
    return judged, not_applicable


def _not_applicable_doc(name: str, deployment: Any, family: Any, items: list) -> dict[str, Any]:
    """One skipped Allure result for a deployment's not-applicable controls of one family: each control, by reason."""
    message = by_reason(items)
    full = f"not-applicable::{family}::{deployment}"
    return {
        "uuid": name, "historyId": hashlib.md5(full.encode()).hexdigest(),  # noqa: S324 - an id, not security
        "name": f"{family}: {len(items)} control(s) not applicable to {deployment}", "fullName": full,
        "status": "skipped", "statusDetails": {"message": message},
        "labels": [{"name": "epic", "value": family}, {"name": "feature", "value": "not applicable"},
                   {"name": "story", "value": deployment}, {"name": "severity", "value": "trivial"},
                   *({"name": "tag", "value": c} for c in dict.fromkeys(str(r.get("control")) for r in items))],
        "description": "The controls of this family that do not apply to this deployment, and why "
                       "(each one is a result of its own in summary.json and junit.xml).",
    }


def _write(out: Path, name: str, doc: str, flags: int) -> None:
    fd = os.open(os.path.join(out, f"{name}-result.json"), flags, 0o644)
    try:
        os.write(fd, doc.encode("utf-8"))
    finally:
        os.close(fd)
