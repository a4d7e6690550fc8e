"""Once everything is judged, the in-process runner lets the objects it read go (ClusterState.forget): what the
state's memo kept refers back to it, a cycle only the cyclic GC (off in a program run) would free."""

from __future__ import annotations

import gc
import json
import weakref
from pathlib import Path

from nimwarden import cli
from nimwarden.k8s import load_manifests
from nimwarden.k8s import source as k8s
from tests import corpus

TWO_UNITS = {"a/x.yaml": "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: n, labels: {app: p}}\nspec: {containers: [{name: c}]}\n",
             "b/x.yaml": "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: n, labels: {app: p}}\nspec: {containers: [{name: c}]}\n"}


class Found:  # what a memo keeps: something derived that names the state it came from (as Workloads does)
    def __init__(self, state):
        self.state = state


def _state(tmp_path: Path):
    for name, text in TWO_UNITS.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    state = load_manifests([tmp_path])
    assert len(state.units) == 2  # the same Pod in two folders: two apply units, each with its view
    for unit in state.units:
        view = state.view(unit.label)
        view.memo(("found",), lambda v=view: Found(v))
    state.memo(("found",), lambda: Found(state))
    return state


def test_a_forgotten_state_is_freed_without_the_cyclic_gc(tmp_path):
    kept, freed = _state(tmp_path / "kept"), _state(tmp_path / "freed")
    refs = (weakref.ref(kept), weakref.ref(freed))
    views = [weakref.ref(freed.view(u.label)) for u in freed.units]  # each holds the objects of its unit
    was = gc.isenabled()
    gc.disable()
    try:
        freed.forget()
        del kept, freed
        assert refs[1]() is None and [v() for v in views] == [None, None]  # forgotten: freed by reference counts alone
        assert refs[0]() is not None  # not forgotten: its memo's cycle keeps it
    finally:
        if was:
            gc.enable()


def test_an_offline_audit_lets_its_state_go_and_still_reports_what_it_read(tmp_path, capsys):
    k8s.clear_cache()
    profile = corpus.one_pod_profile(tmp_path)
    assert cli.main(["audit", "--target", str(profile), "--reports-dir", str(tmp_path / "r")]) == 3
    capsys.readouterr()
    from nimwarden.families import load_profile

    assert k8s.cached(load_profile(profile).kubernetes) is None  # let go once judged (and not read again)
    (run,) = [p for p in (tmp_path / "r").iterdir() if p.name != "latest"]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["kubernetes"]["objects"] == {"Pod": 1}  # the inventory, taken before
