"""An SVG picture of the expected-versus-observed reachability matrix, for the HTML report.

Rows are source positions, columns destination ports; each cell shows the
declared (upper-left triangle) and observed (lower-right) state, and its
border colour says the verdict. Plain SVG text, no external libraries, so
the self-contained report can inline it.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from nimwarden.netpol.enforcement import ALLOWED, BLOCKED, BROKEN, CONSISTENT, NOT_ENFORCED, MatrixData

FILL = {ALLOWED: "#2e7d32", BLOCKED: "#9e9e9e", "error": "#f9a825"}
BORDER = {CONSISTENT: "#cfd8dc", NOT_ENFORCED: "#c62828", BROKEN: "#ef6c00", "error": "#6a1b9a"}
LEGEND = (
    (CONSISTENT, "consistent"),
    (NOT_ENFORCED, "declared blocked, observed reachable"),
    (BROKEN, "declared allowed, observed blocked"),
    ("error", "probe error"),
)
CELL, GAP, CHAR_W = 34, 4, 7
KEY_LINE = "cell: upper-left = declared, lower-right = observed; green allowed, grey blocked, amber error"


def render_svg(data: MatrixData | dict, title: str = "Network policy: declared vs observed") -> str:
    """The picture; ``data`` may be the ``matrix`` dict kept in NETPOL-ENFORCED evidence."""
    if isinstance(data, dict):
        data = MatrixData.from_dict(data)
    left = 16 + CHAR_W * max((len(s) for s in data.sources), default=4)
    top = 40 + int(CHAR_W * 0.75 * max((len(c) for c in data.columns), default=4))
    longest_col = max((len(c) for c in data.columns), default=4)
    # Column labels lean right at 45 degrees past the grid; the legend has a long first line.
    width = max(left + (CELL + GAP) * max(len(data.columns), 1) + int(CHAR_W * 0.75 * longest_col) + 20, 8 + CHAR_W * len(KEY_LINE))
    legend_y = top + (CELL + GAP) * max(len(data.sources), 1) + 16
    height = legend_y + 22 * (len(LEGEND) + 1) + 10
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11" role="img">',
        f"<title>{escape(title)}</title>",
        f'<text x="8" y="18" font-size="13" font-weight="bold">{escape(title)}</text>',
    ]
    for ci, col in enumerate(data.columns):
        x = left + ci * (CELL + GAP) + CELL // 2
        out.append(f'<text x="{x}" y="{top - 6}" transform="rotate(-45 {x} {top - 6})">{escape(col)}</text>')
    for ri, src in enumerate(data.sources):
        y = top + ri * (CELL + GAP)
        out.append(f'<text x="{left - 8}" y="{y + CELL // 2 + 4}" text-anchor="end">{escape(src)}</text>')
        for ci, col in enumerate(data.columns):
            x = left + ci * (CELL + GAP)
            cell = data.cell(src, col)
            if cell is None:
                out.append(f'<rect x="{x}" y="{y}" width="{CELL}" height="{CELL}" fill="none" stroke="#e0e0e0" stroke-dasharray="2,2"><title>not probed</title></rect>')
                continue
            declared = FILL[ALLOWED if cell.expected else BLOCKED]
            observed = FILL.get(cell.observed, FILL["error"])
            tip = escape(cell.reason)
            out.append(f"<g><title>{tip}</title>")
            out.append(f'<polygon points="{x},{y} {x + CELL},{y} {x},{y + CELL}" fill="{declared}"/>')
            out.append(f'<polygon points="{x + CELL},{y} {x + CELL},{y + CELL} {x},{y + CELL}" fill="{observed}"/>')
            out.append(f'<rect x="{x + 1.5}" y="{y + 1.5}" width="{CELL - 3}" height="{CELL - 3}" fill="none" stroke="{BORDER.get(cell.verdict, BORDER["error"])}" stroke-width="3"/>')
            out.append("</g>")
    out.append(f'<text x="8" y="{legend_y}">{KEY_LINE}</text>')
    for i, (verdict, text) in enumerate(LEGEND):
        y = legend_y + 22 * (i + 1)
        out.append(f'<rect x="8" y="{y - 12}" width="14" height="14" fill="none" stroke="{BORDER[verdict]}" stroke-width="3"/>')
        out.append(f'<text x="28" y="{y}">{escape(text)}</text>')
    out.append("</svg>")
    return "\n".join(out)
