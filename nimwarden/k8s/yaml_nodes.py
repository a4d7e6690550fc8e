"""Rendered manifests read fast: libyaml's safe loader, with what it does in Python done once.

Manifests are read into YAML nodes and built into Python values; of each node only its lines are
kept (:func:`lines_of`), so that a finding's field can be turned into a line. libyaml composes the nodes in C but asks PyYAML's resolver, in Python, for
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
# One str object per key and short value: a rendered tree says ``name``, ``containerPort``, ``IfNotPresent`` and
# ``app.kubernetes.io/instance`` hundreds of thousands of times, and the parser makes a new string each time. Kept
# once (body and lines alike), 2,000 rendered workloads take 330 MiB read, not 372, and hand back from the child
# that read them 13 MB pickled, not 22 (pickle writes a shared object once).
SHARED_UP_TO = 64
SHARED_MAX = 1_000_000
_shared: dict[str, str] = {}


class Loader(SAFE_LOADER):  # type: ignore[misc,valid-type]
    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        key = (kind, value, implicit)
        tag = _resolved.get(key)
        if tag is None:
            tag = super().resolve(kind, value, implicit)
            if len(_resolved) < _RESOLVED_MAX:
                _resolved[key] = tag
        return tag


class Map(dict):
    """The lines of a mapping node: key → the key's line where the value is a plain scalar, else (the
    key's line, the value's :class:`Map`, :class:`Seq` or :class:`Block`). Lines are 0-based, as in
    libyaml's marks."""

    __slots__ = ("line",)


class Seq(list):
    """The lines of a sequence node: each item's line (a plain scalar), or its Map, Seq or Block."""

    __slots__ = ("line",)


class Block:
    """A literal block scalar (``|``): its text may hold YAML (a ConfigMap's ``config.yaml: |``)."""

    __slots__ = ("line", "text")

    def __init__(self, line: int, text: str):
        self.line, self.text = line, text


def line_of(shape: Any) -> int:
    return shape if isinstance(shape, int) else shape.line


# Deeper than this, a document is refused (Kubernetes objects nest a few dozen levels; a CRD's schema 60 or so).
# Below Python's recursion limit with room to spare, so that a document read is one every later walk can take.
DEPTH_MAX = 200


class TooDeep(yaml.YAMLError):
    def __init__(self, node: Any):
        self.problem_mark = getattr(node, "start_mark", None)
        self.problem = f"nested deeper than {DEPTH_MAX} levels (Kubernetes objects nest a few dozen)"
        super().__init__(self.problem)


def lines_of(node: Any) -> Any:
    """What a document's node keeps once built: the line of every key and item, nothing else (the
    nodes themselves were two thirds of a read tree's memory: 15.6 of 24.0 MiB for 1,890 objects, where
    their lines take 4.1 MiB).
    An alias is the same shape, as it is the same node. A document nested deeper than :data:`DEPTH_MAX` is a
    YAML error (:class:`TooDeep`): every walk of its values (redaction, the judges, the reports) recurses."""
    shapes: dict[int, Any] = {}
    ints: dict[int, int] = {}  # one int object per line number

    def shape(n: Any, depth: int = 0) -> Any:
        key = id(n)
        found = shapes.get(key)
        if found is not None:
            return found
        if depth > DEPTH_MAX:
            raise TooDeep(n)
        at = n.start_mark.line
        at = ints.setdefault(at, at)
        kind = n.__class__
        if kind is yaml.ScalarNode:
            out: Any = Block(at, n.value) if n.style == "|" else at
        elif kind is yaml.SequenceNode:
            out = shapes[key] = Seq()
            out.line = at
            out.extend(shape(c, depth + 1) for c in n.value)
        else:
            out = shapes[key] = Map()
            out.line = at
            for k, v in n.value:
                name = getattr(k, "value", None)
                if isinstance(name, str) and len(name) <= SHARED_UP_TO:
                    name = _shared.setdefault(name, name) if len(_shared) < SHARED_MAX else _shared.get(name, name)
                if isinstance(name, str) and name not in out:  # the first of two equal keys, as a search finds
                    child, kl = shape(v, depth + 1), k.start_mark.line
                    kl = ints.setdefault(kl, kl)
                    out[name] = kl if isinstance(child, int) else (kl, child)
        shapes[key] = out
        return out

    return shape(node)


def construct(loader: Any, node: Any) -> Any:
    """The value of a document's node, as the safe constructor builds it."""
    made: dict[int, Any] = {}  # node → value: an alias is the same object, never a second copy

    def build(n: Any) -> Any:
        key = id(n)
        if key in made:
            return made[key]
        kind = n.__class__
        if kind is yaml.ScalarNode and n.tag == _STR:
            value: Any = n.value
            if len(value) <= SHARED_UP_TO:  # the one copy of a key or short value (see SHARED_UP_TO)
                value = _shared.setdefault(value, value) if len(_shared) < SHARED_MAX else _shared.get(value, value)
        elif kind is yaml.SequenceNode and n.tag == _SEQ:
            value = made[key] = []
            value.extend(build(c) for c in n.value)
            return value
        elif kind is yaml.MappingNode and n.tag == _MAP and not any(k.tag == _MERGE for k, _ in n.value):
            value = made[key] = {}
            for k, v in n.value:
                item = build(k)
                try:
                    value[item] = build(v)
                except TypeError:  # an unhashable key: the constructor says so, as a YAML error
                    return loader.construct_object(n, deep=True)
            return value
        else:
            value = loader.construct_object(n, deep=True)
        made[key] = value
        return value

    return build(node)
