"""YAML from files nimwarden did not write, read with a bound on aliases.

A YAML alias (``*a``) names a node already read; a document whose anchors alias anchors that alias others
(the "billion laughs") is a kilobyte on disk and billions of nodes to anything that walks it. The safe
loader shares aliased values rather than copying them, so loading is cheap, but every judge, the redaction
of evidence and the reports walk values, and a rendered manifest of 1 kB in a pull request hung an audit for
minutes in gigabytes. Kubernetes' own YAML reader (go-yaml) refuses such a document ("document contains
excessive aliasing"); so does nimwarden: a document whose aliases add more than :data:`ALIAS_NODES_MAX`
nodes to it is a YAML error, raised before any value is built. Counting is linear in the nodes read
(each node's expanded size is counted once).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Nodes that aliases may add to one document. Hand-written YAML aliases a block or two (an env list shared by
# two containers: tens of nodes); rendered Helm output has no aliases at all.
ALIAS_NODES_MAX = 100_000


class ExcessiveAliasing(yaml.YAMLError):
    """A document whose aliases expand it beyond :data:`ALIAS_NODES_MAX` nodes, or an alias inside its own anchor
    (a value that contains itself): read as invalid YAML, as Kubernetes' own YAML reader reads them."""

    def __init__(self, node: Any, problem: str):
        self.problem_mark = getattr(node, "start_mark", None)
        self.problem = problem
        super().__init__(problem)


def check_aliasing(root: Any) -> None:
    """Raise :class:`ExcessiveAliasing` where the document of node ``root`` is, with its aliases expanded, more than
    :data:`ALIAS_NODES_MAX` nodes larger than the nodes it holds, or where an alias names a node it is inside.
    Iterative (any depth the parser allows), each node counted once."""
    sizes: dict[int, int] = {}  # a node's expanded size; 0 while its children are counted (it is an ancestor)
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, children_counted = stack.pop()
        key = id(node)
        if isinstance(node, yaml.ScalarNode):
            sizes[key] = 1
            continue
        kids = [c for pair in node.value for c in pair] if isinstance(node, yaml.MappingNode) else node.value
        if children_counted:
            sizes[key] = total = 1 + sum(sizes[id(k)] for k in kids)
            if total - len(sizes) > ALIAS_NODES_MAX:  # len(sizes): the distinct nodes met so far
                raise ExcessiveAliasing(root, f"excessive aliasing: its aliases expand the document by more than "
                                              f"{ALIAS_NODES_MAX:,} nodes (an alias bomb?); Kubernetes' YAML reader refuses it too")
            continue
        if key in sizes:  # met before (an alias, or a node two parents share): counted once
            continue
        sizes[key] = 0
        if any(sizes.get(id(k)) == 0 for k in kids):  # a child that is this node or one it is inside
            raise ExcessiveAliasing(node, "an alias inside its own anchor (a value that contains itself); "
                                          "Kubernetes' YAML reader refuses it too")
        stack.append((node, True))
        stack.extend((k, False) for k in kids if id(k) not in sizes)


def load(text: str, loader: type = SAFE_LOADER) -> Any:
    """``yaml.load(text, loader)`` of one document, aliases bounded (:func:`check_aliasing`)."""
    reader = loader(text)
    try:
        node = reader.get_single_node()
        if node is None:
            return None
        if "&" in text:  # no anchor, no alias (an alias names an anchor of its document)
            check_aliasing(node)
        return reader.construct_document(node)
    finally:
        reader.dispose()


def load_all(text: str, loader: type = SAFE_LOADER) -> Iterator[Any]:
    """``yaml.load_all(text, loader)``, each document's aliases bounded."""
    reader = loader(text)
    anchors = "&" in text
    try:
        while reader.check_node():
            node = reader.get_node()
            if anchors:
                check_aliasing(node)
            yield reader.construct_document(node)
    finally:
        reader.dispose()
