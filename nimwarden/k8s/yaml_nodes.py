"""Rendered manifests read fast: libyaml's safe loader, with what it does in Python done once.

Manifests are read into YAML nodes (kept, so that a finding's field can be turned into a line) and
built into Python values. libyaml composes the nodes in C but asks PyYAML's resolver, in Python, for
the tag of every scalar, and PyYAML's safe constructor builds every value in Python. A rendered tree
says ``name``, ``image``, ``true`` and ``"8000"`` thousands of times, so :class:`Loader` remembers the
resolver's answers, and :func:`construct` builds plain strings, lists and mappings itself, handing
every other node (numbers, booleans, null, timestamps, merge keys, tagged values) to the safe
constructor: the same values as ``yaml.load(…, CSafeLoader)``, aliases shared as it shares them.
"""

from __future__ import annotations

from typing import Any

import yaml

SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR, _SEQ, _MAP, _MERGE = (f"tag:yaml.org,2002:{t}" for t in ("str", "seq", "map", "merge"))
_resolved: dict[tuple, str] = {}
_RESOLVED_MAX = 100_000


class Loader(SAFE_LOADER):  # type: ignore[misc,valid-type]
    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        key = (kind, value, implicit)
        tag = _resolved.get(key)
        if tag is None:
            tag = super().resolve(kind, value, implicit)
            if len(_resolved) < _RESOLVED_MAX:
                _resolved[key] = tag
        return tag


class Line:
    """What a node keeps of its position once built: its line (the nodes stay, to turn a finding's field
    into a line; libyaml's two marks per node, each with a dict of six fields, were half their memory)."""

    __slots__ = ("line",)

    def __init__(self, line: int):
        self.line = line

    def __str__(self) -> str:
        return f"line {self.line + 1}"


def construct(loader: Any, node: Any) -> Any:
    """The value of a document's node, as the safe constructor builds it; each node built keeps only
    the line it starts on (``node.start_mark.line``)."""
    made: dict[int, Any] = {}  # node → value: an alias is the same object, never a second copy
    lines: dict[int, Line] = {}

    def slim(n: Any) -> None:
        at = n.start_mark.line
        n.start_mark = lines.get(at) or lines.setdefault(at, Line(at))
        n.end_mark = None

    def build(n: Any) -> Any:
        key = id(n)
        if key in made:
            return made[key]
        kind = n.__class__
        if kind is yaml.ScalarNode and n.tag == _STR:
            value: Any = n.value
        elif kind is yaml.SequenceNode and n.tag == _SEQ:
            value = made[key] = []
            value.extend(build(c) for c in n.value)
            slim(n)
            return value
        elif kind is yaml.MappingNode and n.tag == _MAP and not any(k.tag == _MERGE for k, _ in n.value):
            value = made[key] = {}
            for k, v in n.value:
                item = build(k)
                try:
                    value[item] = build(v)
                except TypeError:  # an unhashable key: the constructor says so, as a YAML error
                    return loader.construct_object(n, deep=True)
            slim(n)
            return value
        else:
            value = loader.construct_object(n, deep=True)
        made[key] = value
        slim(n)
        return value

    return build(node)
