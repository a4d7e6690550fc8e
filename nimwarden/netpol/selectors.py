"""Kubernetes label selectors (metav1.LabelSelector) as predicates over label maps.

A *missing* selector and an *empty* one mean different things in a
NetworkPolicy peer (missing namespaceSelector = "the policy's own namespace",
empty = "every namespace"), so callers keep ``None`` apart from
:data:`MATCH_ALL`; this module only compiles a selector that is present.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


class SelectorError(ValueError):
    """A selector the API server would reject (unknown operator, In without values...)."""


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str
    values: frozenset[str]

    def matches(self, labels: Mapping[str, str]) -> bool:
        # Semantics of k8s.io/apimachinery/pkg/labels: NotIn and DoesNotExist
        # also match objects that lack the key.
        if self.operator == "In":
            return self.key in labels and labels[self.key] in self.values
        if self.operator == "NotIn":
            return self.key not in labels or labels[self.key] not in self.values
        if self.operator == "Exists":
            return self.key in labels
        return self.key not in labels  # DoesNotExist

    def describe(self) -> str:
        if self.operator in ("Exists", "DoesNotExist"):
            return f"{'' if self.operator == 'Exists' else '!'}{self.key}"
        op = "in" if self.operator == "In" else "notin"
        return f"{self.key} {op} ({','.join(sorted(self.values))})"


@dataclass(frozen=True)
class Selector:
    """A compiled label selector: matchLabels AND every matchExpression."""

    match_labels: tuple[tuple[str, str], ...] = ()
    expressions: tuple[Requirement, ...] = ()

    @property
    def is_empty(self) -> bool:
        """An empty selector selects everything."""
        return not self.match_labels and not self.expressions

    def matches(self, labels: Mapping[str, str]) -> bool:
        for key, value in self.match_labels:
            if labels.get(key) != value:
                return False
        return all(req.matches(labels) for req in self.expressions)

    def describe(self) -> str:
        if self.is_empty:
            return "{} (everything)"
        parts = [f"{k}={v}" for k, v in self.match_labels] + [r.describe() for r in self.expressions]
        return ",".join(parts)

    def pinned_values(self, key: str) -> frozenset[str] | None:
        """The values ``key`` may take for a match, or None when the selector does not pin it.

        Used by static checks: a namespaceSelector pinned on the immutable
        ``kubernetes.io/metadata.name`` label names its namespaces exactly.
        """
        allowed: frozenset[str] | None = None
        for k, v in self.match_labels:
            if k == key:
                allowed = frozenset({v}) if allowed is None else allowed & {v}
        for req in self.expressions:
            if req.key == key and req.operator == "In":
                allowed = req.values if allowed is None else allowed & req.values
        return allowed


MATCH_ALL = Selector()


def parse_selector(raw: Any, where: str = "selector") -> Selector:
    """Compile a LabelSelector dict (``{}`` selects everything)."""
    if raw is None:
        raise SelectorError(f"{where}: selector is missing")
    if not isinstance(raw, Mapping):
        raise SelectorError(f"{where}: expected a mapping, got {type(raw).__name__}")
    labels = raw.get("matchLabels") or {}
    if not isinstance(labels, Mapping):
        raise SelectorError(f"{where}.matchLabels: expected a mapping")
    reqs = []
    for i, expr in enumerate(raw.get("matchExpressions") or ()):
        at = f"{where}.matchExpressions[{i}]"
        if not isinstance(expr, Mapping) or "key" not in expr or "operator" not in expr:
            raise SelectorError(f"{at}: needs key and operator")
        op = expr["operator"]
        values = expr.get("values") or []
        if op not in OPERATORS:
            raise SelectorError(f"{at}.operator: unknown operator {op!r}")
        if op in ("In", "NotIn") and not values:
            raise SelectorError(f"{at}.values: operator {op} needs at least one value")
        if op in ("Exists", "DoesNotExist") and values:
            raise SelectorError(f"{at}.values: operator {op} takes no values")
        reqs.append(Requirement(str(expr["key"]), op, frozenset(str(v) for v in values)))
    return Selector(tuple(sorted((str(k), str(v)) for k, v in labels.items())), tuple(reqs))
