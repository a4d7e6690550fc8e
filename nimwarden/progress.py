"""Progress a person can follow on a long audit: which family and deployment is being probed, and
how many controls are left.

One line through pytest's own terminal reporter each time the family or the deployment being
probed changes (a deployment change within a family at most once a second; under xdist, whose
workers interleave, any change at most once every five seconds), on a line of its own:

    nimwarden: probing triton-api on exposed — 34 of 210 controls done, 176 left

It runs on the controller only (under xdist the workers' starts and finishes arrive there), writes
nothing under ``-q`` or when the terminal is not a tty (a CI log already has pytest's lines), and
``NIMWARDEN_PROGRESS=1`` / ``=0`` turns it on or off whatever the terminal.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from nimwarden.catalog import FAMILIES, package_of

MIN_INTERVAL_S = 1.0
XDIST_INTERVAL_S = 5.0
_FAMILY_OF_SUITE = {f"test_{package_of(f)}": f for f in FAMILIES}


def enabled(config: Any, isatty: Callable[[], bool] | None = None) -> bool:
    if getattr(config.option, "verbose", 0) < 0:
        return False  # -q: the user asked for less
    forced = os.environ.get("NIMWARDEN_PROGRESS")
    if forced in ("0", "1"):
        return forced == "1"
    return bool((isatty or sys.stdout.isatty)())


def where(nodeid: str, deployments: tuple[str, ...]) -> tuple[str, str] | None:
    """(family, deployment) a compliance test's node id names, or None for another test."""
    path, _, rest = nodeid.partition("::")
    family = _FAMILY_OF_SUITE.get(path.rsplit("/", 1)[-1].removesuffix(".py"))
    if family is None:
        return None
    params = rest.partition("[")[2].rstrip("]")
    hits = [d for d in deployments if re.search(rf"(?:^|-){re.escape(d)}(?:-|$)", params)]
    return family, (max(hits, key=len) if hits else "target-wide")


class Progress:
    def __init__(self, config: Any, state: Any, clock: Callable[[], float] = time.monotonic, isatty: Callable[[], bool] | None = None):
        self.config = config
        self.state = state
        self.clock = clock
        self.on = enabled(config, isatty)
        self.deployments = tuple(d.name for d in state.target.deployments)
        self.done = 0
        self.current: tuple[str, str] | None = None
        self.last = float("-inf")
        self.lines: list[str] = []
        self.distributed = bool(getattr(config.option, "numprocesses", None)) and hasattr(config.pluginmanager, "hasplugin") \
            and config.pluginmanager.hasplugin("dsession")

    def _total(self) -> int:
        return len(self.state.collected)

    def _write(self, line: str) -> None:
        self.lines.append(line)
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            tw = getattr(reporter, "_tw", None)
            if tw is not None and getattr(tw, "width_of_current_line", 0):
                tw.line()  # after pytest's dots (or xdist's), never glued to them
            reporter.write_line(line)

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        if not self.on:
            return
        here = where(nodeid, self.deployments)
        if here is None or here == self.current:
            return
        now = self.clock()
        if self.current is not None:
            if self.distributed and now - self.last < XDIST_INTERVAL_S:
                return  # workers interleave families and deployments: a line now and then, not per test
            if now - self.last < MIN_INTERVAL_S and here[0] == self.current[0]:
                return  # a deployment change within the same family, too soon after the last line
        self.current, self.last = here, now
        total = self._total()
        left = f" — {self.done} of {total} controls done, {max(total - self.done, 0)} left" if total else ""
        self._write(f"nimwarden: probing {here[0]} on {here[1]}{left}")

    def pytest_runtest_logfinish(self, nodeid: str, location: Any) -> None:
        if where(nodeid, self.deployments) is not None:
            self.done += 1
