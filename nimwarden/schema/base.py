"""The building blocks of the profile schema: the ``Section`` every model of the profile derives
from, the field types profiles share (paths, namespaces, endpoint names …) and ``problem``, the one
way a validator says what is wrong.

Validators run inside pydantic with a validation context (a dict) that the loader fills:
``file`` (the profile's path: relative paths resolve against its folder), ``lab_state`` (the running
lab's state, once ``lab.state_file`` is read: ``${lab.<deployment>.<key>}`` resolves from it) and
``resolve_credentials``. Validated without a context (a family parsing its own section at run
time), paths are taken as written and ``${…}`` is left alone.
"""

from __future__ import annotations

import difflib
import re
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from nimwarden.paths import profile_path

LAB_REF = re.compile(r"\$\{lab\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_]+)\}")
SECRET_WORDS = re.compile(r"(token|secret|password|passwd|api[_-]?key|apikey|credential)", re.I)
PROBLEM = "nimwarden"  # the error type of every message written here (see messages.py)


def problem(message: str, at: tuple[str | int, ...] = ()) -> PydanticCustomError:
    """The error a validator raises: ``message`` about the field it validates, or about a field
    ``at`` below it (a key path: str for a mapping key, int for a list index)."""
    return PydanticCustomError(PROBLEM, "{message}", {"message": message, "at": tuple(at)})


def close_match(word: Any, options: Any) -> str | None:
    found = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)
    return found[0] if found else None


def _context(info: ValidationInfo | None) -> dict:
    return info.context if info is not None and isinstance(info.context, dict) else {}


def substitute_lab(value: Any, context: dict, at: tuple = ()) -> Any:
    """``${lab.<deployment>.<key>}`` in every string of ``value``, from the lab's state."""
    if isinstance(value, dict):
        return {k: substitute_lab(v, context, (*at, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute_lab(v, context, (*at, i)) for i, v in enumerate(value)]
    if not (isinstance(value, str) and "${" in value):
        return value
    state = context.get("lab_state")
    if state is None:
        raise problem("refers to ${lab.…} but the profile has no lab.state_file", at)

    def repl(m: re.Match) -> str:
        dep, key = m.group(1), m.group(2)
        try:
            return str(state["deployments"][dep][key])
        except (KeyError, TypeError):
            raise problem(f"lab state has no {dep}.{key}; is the lab up with this deployment?", at) from None

    out = LAB_REF.sub(repl, value)
    if "${" in out:
        raise problem("unknown reference; only ${lab.<deployment>.<key>} is supported", at)
    return out


class Section(BaseModel):
    """A mapping of the profile: unknown keys are refused with the nearest known one, values are
    taken as written (no "5" for 5, no 1 for true), and ``${lab.x.y}`` is resolved before a
    field is checked. ``prepare`` lets a section look at its raw input first."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, hide_input_in_errors=True, defer_build=True)

    @classmethod
    def prepare(cls, data: Any, info: ValidationInfo) -> Any:
        return data

    @model_validator(mode="before")
    @classmethod
    def _shape(cls, data: Any, info: ValidationInfo) -> Any:
        data = cls.prepare(data, info)
        if isinstance(data, dict) and cls.model_config.get("extra") == "forbid":
            known = [f.alias or name for name, f in cls.model_fields.items()]
            for key in data:
                if key not in known:
                    hint = close_match(key, known)
                    raise problem("unknown key" + (f" (did you mean {hint!r}?)" if hint else f" (allowed: {', '.join(known)})"),
                                  (str(key),))
        return data

    @field_validator("*", mode="before")
    @classmethod
    def _lab_refs(cls, value: Any, info: ValidationInfo) -> Any:
        context = _context(info)
        return substitute_lab(value, context) if context.get("file") is not None else value


# --------------------------------------------------------------------------- field types


def _resolve_path(value: str, info: ValidationInfo) -> str:
    """A path as the profile means it: ``~`` expanded, relative to the profile's folder."""
    if "\0" in value:
        raise problem("a path cannot hold a NUL byte")
    return str(profile_path(value, _context(info).get("file")))


def _namespace(value: str) -> str:
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", value):
        raise problem(f"{value!r} is not a Kubernetes namespace name (lower-case letters, digits and dashes)")
    return value


Text = Annotated[str, Field(min_length=1)]
ProfilePath = Annotated[str, Field(min_length=1), AfterValidator(_resolve_path)]
Namespace = Annotated[str, AfterValidator(_namespace)]
Positive = Annotated[float, Field(gt=0)]
Labels = dict[str, str]
