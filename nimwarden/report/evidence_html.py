"""Evidence of one result rendered as HTML: request/response, object and field path, observed vs expected.

Evidence is free-form data from probes, and much of it comes from the
target (response bodies, object names), so every value is escaped; an SVG
supplied by a probe is embedded as an ``<img>`` data URI, where it cannot run
script, never inline.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from html import escape
from typing import Any

from nimwarden.printable import UNSAFE_CHARS, visible
from nimwarden.report import charts

REQUEST_KEYS = ("probe", "request", "method", "url", "headers_sent")
RESPONSE_KEYS = ("response_status", "status_code", "response", "response_headers", "response_body", "grpc_status")
OBJECT_KEYS = ("object", "kind", "namespace", "name", "field", "path", "container", "file", "line")
COMPARE_KEYS = ("observed", "expected")
PICTURE_KEYS = ("svg", "latencies_ms", "latency_histogram", "reachability", "matrix")  # drawn, not tabled
LONG_TEXT = 200


_SPECIAL = re.compile(f"[&<>\"'{UNSAFE_CHARS}]")


def e(value: Any) -> str:
    """``html.escape(visible(str(value)), quote=True)`` (a target's control characters shown, not passed on); most
    values hold nothing to escape, and a search finds that in C."""
    text = value if isinstance(value, str) else str(value)
    return text if _SPECIAL.search(text) is None else escape(visible(text), quote=True)


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def records_table(value: Any) -> str:
    """A list of flat records (e.g. one row per request probed) as a table: easier to scan than JSON."""
    if not (isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value)):
        return ""
    columns: list[str] = []
    for record in value:
        columns += [k for k in record if k not in columns]
    if len(columns) > 8 or not all(_scalar(v) for record in value for v in record.values()):
        return ""
    head = "".join(f"<th>{e(c)}</th>" for c in columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{e(json.dumps(r.get(c)) if not isinstance(r.get(c), str) else r.get(c))}</td>" for c in columns) + "</tr>"
        for r in value
    )
    return f'<table class="records"><tr>{head}</tr>{rows}</table>'


def value_html(value: Any) -> str:
    """A scalar inline; a list of flat records as a table; anything else structured or long as JSON in a <pre>."""
    if isinstance(value, str):
        if len(value) > LONG_TEXT or "\n" in value:
            return f"<pre>{e(value)}</pre>"
        return f"<code>{e(value)}</code>"
    if isinstance(value, bool) or value is None:
        return f"<code>{e(json.dumps(value))}</code>"
    if isinstance(value, int | float):
        return f"<code>{e(value)}</code>"
    table = records_table(value)
    if table:
        return table
    try:
        text = json.dumps(value, indent=2, sort_keys=True, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return f"<pre>{e(text)}</pre>"


def _rows(evidence: Mapping[str, Any], keys: tuple[str, ...]) -> str:
    return "".join(f"<tr><th>{e(k)}</th><td>{value_html(evidence[k])}</td></tr>" for k in keys if k in evidence)


def _block(title: str, css: str, rows: str) -> str:
    return f'<div class="ev {css}"><h4>{e(title)}</h4><table>{rows}</table></div>' if rows else ""


def object_path(evidence: Mapping[str, Any]) -> str:
    """``Deployment/nim/llama › spec.template.spec.containers[0].securityContext`` style locator."""
    obj = evidence.get("object")
    if obj is None and evidence.get("kind") and evidence.get("name"):
        ns = evidence.get("namespace")
        obj = f"{evidence['kind']}/{ns + '/' if ns else ''}{evidence['name']}"
    # "path" alone is usually an HTTP path; it is a field path only next to an object
    field = evidence.get("field") or (evidence.get("path") if obj is not None else None)
    if obj is None and field is None:
        return ""
    where = f"{e(obj)}" if obj is not None else ""
    if field is not None:
        where += f' <span class="path">› {e(field)}</span>'
    if evidence.get("file"):
        loc = f"{evidence['file']}" + (f":{evidence['line']}" if evidence.get("line") else "")
        where += f' <span class="file">({e(loc)})</span>'
    return f'<div class="ev object"><h4>Object</h4><p>{where}</p></div>'


def comparison(evidence: Mapping[str, Any]) -> str:
    if "observed" not in evidence and "expected" not in evidence:
        return ""
    observed = value_html(evidence["observed"]) if "observed" in evidence else "<em>not recorded</em>"
    expected = value_html(evidence["expected"]) if "expected" in evidence else "<em>not recorded</em>"
    return (
        '<div class="ev compare"><h4>Observed vs expected</h4><table>'
        f'<tr><th class="observed">observed</th><td>{observed}</td></tr>'
        f'<tr><th class="expected">expected</th><td>{expected}</td></tr></table></div>'
    )


def _charts(evidence: Mapping[str, Any]) -> list[str]:
    out = []
    svg = evidence.get("svg")
    has_svg = isinstance(svg, str) and svg.lstrip().startswith("<svg")
    if has_svg:
        data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
        out.append(f'<img class="ev-svg" alt="picture from the probe" src="data:image/svg+xml;base64,{data}">')
    for chart in (
        charts.latency_chart(evidence),
        charts.percentiles_chart(evidence.get("latency_us")),
        charts.windows_chart(evidence.get("windows")),
        charts.ratio_chart(evidence),
        # the probe's own picture of the same matrix is richer (declared and observed per cell): one is enough
        "" if has_svg else charts.reachability_matrix(evidence),
    ):
        if chart:
            out.append(chart)
    return out


def pictures(evidence: Mapping[str, Any]) -> str:
    parts = _charts(evidence)
    # combined verdicts (one per model and load level) carry each part's evidence: picture every part
    for part in evidence.get("parts") or []:
        if isinstance(part, Mapping) and isinstance(part.get("evidence"), Mapping):
            inner = _charts(part["evidence"])
            if inner:
                parts.append(f'<figure><figcaption>{e(part.get("subject", ""))}</figcaption>{"".join(inner)}</figure>')
    return f'<div class="ev pictures">{"".join(parts)}</div>' if parts else ""


def evidence_html(evidence: Mapping[str, Any] | None) -> str:
    if not evidence:
        return '<p class="muted">no evidence recorded</p>'
    if not isinstance(evidence, Mapping):
        return value_html(evidence)
    shown = set(REQUEST_KEYS + RESPONSE_KEYS + COMPARE_KEYS + PICTURE_KEYS)
    if object_path(evidence):
        shown |= set(OBJECT_KEYS)
    rest = tuple(k for k in evidence if k not in shown)
    parts = [
        _block("Request", "request", _rows(evidence, REQUEST_KEYS)),
        _block("Response", "response", _rows(evidence, RESPONSE_KEYS)),
        object_path(evidence),
        comparison(evidence),
        pictures(evidence),
        _block("Other evidence", "other", _rows(evidence, rest)),
    ]
    return "".join(p for p in parts if p)
