"""A pydantic ValidationError as the one line a user reads: ``field.path: what was expected, what
was found`` (the loader puts the file in front). Only the first error is told: fix it, run again.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from pydantic import ValidationError

from nimwarden.schema.base import PROBLEM

_KINDS = ((bool, "a boolean"), (int, "an integer"), (float, "a number"), (str, "a string"), (list, "a list"),
          (dict, "a mapping"), (dt.datetime, "a timestamp"), (dt.date, "a date"), (bytes, "binary data"))


def kind_of(value: Any) -> str:
    """What a YAML value is, in a profile author's words: ``null``, ``an integer (5)``, ``a list``."""
    if value is None:
        return "null"
    for typ, name in _KINDS:
        if isinstance(value, typ):
            return f"{name} ({shown(value)})" if isinstance(value, (bool, int, float, str)) else name
    return type(value).__name__


def shown(value: Any, limit: int = 60) -> str:
    """A value on one line, cut short: repr escapes line breaks and control characters."""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def field_path(loc: tuple) -> str:
    """``('deployments', 0, 'endpoints', 'http')`` → ``deployments[0].endpoints.http``, printable."""
    out = ""
    for part in loc:
        if part == "[key]":
            continue
        out += f"[{part}]" if isinstance(part, int) and not isinstance(part, bool) else (f".{part}" if out else str(part))
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in out)


def _choices(expected: str) -> str:
    found = re.findall(r"'((?:[^'\\]|\\.)*)'", expected)
    return ", ".join(found) if found else expected


def describe(error: Any) -> str:
    """The problem of one pydantic error, in the style of the profile's other messages."""
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    if kind == PROBLEM:
        return str(ctx["message"])
    got = kind_of(value)
    if "[key]" in error["loc"]:
        return f"keys must be strings, got {got}"
    simple = {
        "missing": "required field missing",
        "model_type": f"must be a mapping, got {got}", "dict_type": f"must be a mapping, got {got}",
        "model_attributes_type": f"must be a mapping, got {got}",
        "string_type": f"must be a string, got {got}", "string_too_short": "must be a non-empty string",
        "list_type": f"must be a list, got {got}", "too_short": "must not be empty",
        "int_type": f"must be a whole number, got {got}", "int_from_float": f"must be a whole number, got {got}",
        "float_type": f"must be a number, got {got}", "bool_type": f"must be true or false, got {got}",
        "finite_number": f"must be a finite number, got {got}",
        "literal_error": f"must be one of {_choices(str(ctx.get('expected', '')))}, got {shown(value)}",
        "extra_forbidden": "unknown key",
    }
    if kind in simple:
        return simple[kind]
    if kind == "too_long":
        return f"may hold at most {ctx.get('max_length')} items, got {ctx.get('actual_length')}"
    bounds = {"greater_than": ("gt", "greater than"), "greater_than_equal": ("ge", "at least"),
              "less_than": ("lt", "less than"), "less_than_equal": ("le", "at most")}
    if kind in bounds:
        key, words = bounds[kind]
        if kind == "greater_than" and ctx.get(key) == 0:
            return f"must be a positive number, got {shown(value)}"
        return f"must be {words} {ctx.get(key)}, got {shown(value)}"
    if kind == "string_pattern_mismatch":
        return f"must match {ctx.get('pattern')}, got {shown(value)}"
    return " ".join(str(error.get("msg", kind)).split()).rstrip(".").lower()


def first_problem(exc: ValidationError, prefix: tuple = ()) -> tuple[str, str]:
    """``(field path, problem)`` of the first error."""
    error = exc.errors(include_url=False)[0]
    loc = (*prefix, *error["loc"])
    if "[key]" in loc:  # a key of the wrong type: name the mapping that holds it
        loc = loc[: loc.index("[key]") - 1]
    if error["type"] == PROBLEM:
        loc = (*loc, *((error.get("ctx") or {}).get("at") or ()))
    return field_path(loc), " ".join(describe(error).split())
