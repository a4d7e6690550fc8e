"""Replays the Pod Security Standards fixtures ported from upstream's generators.

For every policy version v1.0 .. v1.37 and both levels, each generator in force
at that version tweaks the minimal valid pod; pass cases must be allowed and
fail cases denied by the named check — the same loop as upstream's
``fixtures_test.go`` over ``test/testdata/<level>/v1.N``.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from nimwarden.families.pod_security.pss import MAX_VERSION, evaluate_pod

FIXTURES = yaml.safe_load((Path(__file__).parents[1] / "fixtures" / "pss" / "upstream_generators.yaml").read_text())
_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _v(text: str) -> tuple[int, int]:
    major, minor = text.split(".")
    return int(major), int(minor)


def _set(obj: dict, path: str, value) -> None:
    steps = [(m.group(1), m.group(2)) for m in _STEP.finditer(path)]
    node = obj
    for i, (key, index) in enumerate(steps):
        last = i == len(steps) - 1
        nxt = steps[i + 1] if not last else None
        if index is not None:
            idx = int(index)
            if last:
                node[idx] = copy.deepcopy(value)
                return
            node = node[idx]
            continue
        if last:
            if value is None:
                node.pop(key, None)
            else:
                node[key] = copy.deepcopy(value)
            return
        if node.get(key) is None:
            node[key] = [] if nxt[1] is not None else {}
        node = node[key]


def _apply(pod: dict, tweak: dict) -> dict:
    out = copy.deepcopy(pod)
    for path, value in tweak.items():
        if path in ("spec", "metadata"):
            out[path] = copy.deepcopy(value)
        else:
            _set(out, path, value)
    return out


def minimal_pod(level: str, version: tuple[int, int]) -> dict:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "test"}}
    pod = _apply(pod, FIXTURES["minimal"]["baseline"]["1.0"])
    if level == "restricted":
        for since, tweak in sorted(FIXTURES["minimal"]["restricted"].items(), key=lambda kv: _v(kv[0])):
            if _v(since) <= version:
                pod = _apply(pod, tweak)
    return pod


def _cases():
    for level in ("baseline", "restricted"):
        for minor in range(0, MAX_VERSION[1] + 1):
            version = (1, minor)
            for g in FIXTURES["generators"]:
                if level not in g["levels"] or _v(g["since"]) > version:
                    continue
                if "until" in g and version >= _v(g["until"]):
                    continue
                for expect in ("pass", "fail"):
                    for i, tweak in enumerate(g.get(expect) or ()):
                        yield pytest.param(level, version, g["check"], expect, tweak,
                                           id=f"{level}-v1.{minor}-{g['check']}-{expect}{i}-{g['since']}")


CASES = list(_cases())


def test_fixture_set_covers_every_check_and_level():
    from nimwarden.families.pod_security.pss import REGISTRY

    covered = {(p.values[2], p.values[0], p.values[3]) for p in CASES}
    for check, (level, _) in REGISTRY.items():
        levels = ("baseline", "restricted") if level == "baseline" else ("restricted",)
        for lv in levels:
            if check == "hostPathVolumes" and lv == "restricted":
                continue  # overridden by restrictedVolumes at every version
            assert (check, lv, "fail") in covered, f"no fail fixture for {check} at {lv}"
            assert (check, lv, "pass") in covered, f"no pass fixture for {check} at {lv}"


@pytest.mark.parametrize(("level", "version", "check", "expect", "tweak"), CASES)
def test_upstream_fixture(level, version, check, expect, tweak):
    base = minimal_pod(level, version)
    assert evaluate_pod(base, level, f"v1.{version[1]}").allowed, "minimal valid pod must be allowed"
    pod = _apply(base, tweak)
    result = evaluate_pod(pod, level, f"v1.{version[1]}")
    if expect == "pass":
        assert result.allowed, f"expected allowed, got {result.violations}"
    else:
        assert not result.allowed, "expected denied"
        assert check in result.checks_failed(), f"expected {check} among {result.checks_failed()}"


@pytest.mark.parametrize("case", FIXTURES["rendered"], ids=[c["upstream"] for c in FIXTURES["rendered"]])
def test_upstream_rendered_pod(case):
    result = evaluate_pod(case["pod"], case["level"], case["version"])
    assert result.allowed == (case["expect"] == "pass"), result.violations
    if case["expect"] == "fail":
        assert case["check"] in result.checks_failed()
