"""Text a target chose, made safe to show: control characters as visible escapes.

A response body, an image tag or an object name can hold ESC sequences (which recolour, retitle or rewrite a
terminal), NUL and the other C0/C1 controls (which XML 1.0 forbids: one made the in-process runner's junit.xml
unreadable), or a lone surrogate (which no UTF-8 file can hold). Where such text reaches a terminal, an XML
document or HTML, each of those code points is written as ``\\xNN`` / ``\\uNNNN``; tab, newline and carriage
return stay. JSON artifacts need nothing: json escapes them itself.
"""

from __future__ import annotations

import re

# C0 controls but tab, newline and carriage return; DEL and the C1 controls; lone surrogates; the two code points
# XML 1.0 forbids besides
UNSAFE_CHARS = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff"  # inside a character class
UNSAFE = re.compile(f"[{UNSAFE_CHARS}]")


def _escape(match: re.Match) -> str:
    point = ord(match.group())
    return f"\\x{point:02x}" if point <= 0xFF else f"\\u{point:04x}"


def visible(text: str) -> str:
    """``text`` with every :data:`UNSAFE` code point as a visible escape (most text has none: one search, in C)."""
    return text if UNSAFE.search(text) is None else UNSAFE.sub(_escape, text)
