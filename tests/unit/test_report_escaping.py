"""The report writers' escaping shortcuts give what the standard library's escapers give on any text, once a
target's control characters are made visible (nimwarden.printable.visible: XML cannot hold them, and a terminal or
a browser should not be handed them)."""

from __future__ import annotations

import html
from xml.sax import saxutils

from hypothesis import given
from hypothesis import strategies as st

from nimwarden.printable import visible
from nimwarden.report import junit
from nimwarden.report.evidence_html import e

# the characters the escapers change, among ordinary ones
TEXT = st.text(alphabet=st.sampled_from(list("ab &<>\"'\n\r\t;#x→")), max_size=30) | st.text(max_size=30)


@given(TEXT)
def test_junit_escaping_is_the_standard_librarys(text):
    assert junit.quoteattr(text) == saxutils.quoteattr(visible(text))
    assert junit.escape(text) == saxutils.escape(visible(text))


@given(TEXT | st.integers() | st.none())
def test_html_escaping_is_the_standard_librarys(value):
    assert e(value) == html.escape(visible(str(value)), quote=True)


def test_the_characters_that_matter_are_escaped():
    assert junit.quoteattr('a "b" <c>\n') == saxutils.quoteattr('a "b" <c>\n') == "'a \"b\" &lt;c&gt;&#10;'"
    assert e("<script>alert('x')</script>") == "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;"
