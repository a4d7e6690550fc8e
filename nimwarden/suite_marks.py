"""What the in-process runner imports the suites with in place of pytest: ``pytest.mark``, recording marks as
pytest does, and nothing else of pytest's until something asks for it.

The suites are pytest modules: ``import pytest`` at the top, ``@pytest.mark.control("…")``,
``@pytest.mark.parametrize(…)`` and a module-level ``pytestmark`` on their tests. The in-process runner
(:mod:`nimwarden.runner`) reads only those marks (name and arguments) and calls the functions itself, but
importing pytest for them is 0.05 s of every offline audit, a tenth of auditing a chart. While the runner
imports a suite and pytest is not imported already, ``pytest`` is this stand-in: ``mark`` behaves as
pytest's ``MarkDecorator`` (a bare decorator, arguments combined call by call, marks stored innermost first
in ``pytestmark``), and any other name (``pytest.skip``, ``pytest.param``, …) imports the real pytest and
is taken from it, so a suite using more of pytest still gets pytest.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import sys
import types
from collections.abc import Iterator
from typing import Any


class Mark:
    """One mark: its name, arguments and keyword arguments (what the runner reads of pytest's ``Mark``)."""

    __slots__ = ("name", "args", "kwargs")

    def __init__(self, name: str, args: tuple = (), kwargs: dict | None = None) -> None:
        self.name, self.args, self.kwargs = name, tuple(args), dict(kwargs or {})

    def __repr__(self) -> str:
        return f"Mark(name={self.name!r}, args={self.args!r}, kwargs={self.kwargs!r})"


class MarkDecorator:
    """``pytest.mark.<name>``: called with one test function or class, marks it; called otherwise, a decorator
    with those arguments added (pytest's ``MarkDecorator.__call__``)."""

    def __init__(self, mark: Mark) -> None:
        self.mark = mark

    name = property(lambda self: self.mark.name)
    args = property(lambda self: self.mark.args)
    kwargs = property(lambda self: self.mark.kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if args and not kwargs:
            func = args[0]
            unwrapped = func.__func__ if isinstance(func, (staticmethod, classmethod)) else func
            if len(args) == 1 and (inspect.isclass(func) or (inspect.isfunction(unwrapped) and unwrapped.__name__ != "<lambda>")):
                marks = getattr(unwrapped, "pytestmark", [])
                unwrapped.pytestmark = [*(marks if isinstance(marks, list) else [marks]), self.mark]
                return func
        return MarkDecorator(Mark(self.mark.name, self.mark.args + args, {**self.mark.kwargs, **kwargs}))


class _MarkGenerator:
    def __getattr__(self, name: str) -> MarkDecorator:
        if name.startswith("_"):
            raise AttributeError(name)
        return MarkDecorator(Mark(name))


class _Pytest(types.ModuleType):
    """The stand-in module: ``mark`` here, the rest from the real pytest, imported when first asked for."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(_real(), name)


def _real() -> types.ModuleType:
    """The real pytest module: the stand-in leaves sys.modules before it is imported."""
    if isinstance(sys.modules.get("pytest"), _Pytest):
        del sys.modules["pytest"]
    return importlib.import_module("pytest")


STAND_IN = _Pytest("pytest", __doc__)
STAND_IN.mark = _MarkGenerator()  # type: ignore[attr-defined]


@contextlib.contextmanager
def without_pytest() -> Iterator[None]:
    """Within: ``import pytest`` gives the stand-in, unless pytest is imported already (a test session, a run
    under pytest), which is then used as it is."""
    if "pytest" in sys.modules:
        yield
        return
    sys.modules["pytest"] = STAND_IN
    try:
        yield
    finally:
        if sys.modules.get("pytest") is STAND_IN:
            del sys.modules["pytest"]
