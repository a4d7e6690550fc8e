"""The manifests read by a child started before the profile is loaded (nimwarden.k8s.beside.start_early): used
only where the loaded profile plans the very files it read, left to the usual reading otherwise, never left behind."""

from __future__ import annotations

import os

import pytest
import yaml

from nimwarden.families import load_profile
from nimwarden.k8s import beside
from nimwarden.k8s import source as k8s
from tests.unit.test_read_beside import Section, fresh, tree  # noqa: F401 - fresh: the autouse fixture, here too

NO_CHILD = pytest.raises(ChildProcessError)  # os.waitpid of a pid already reaped


def profile_of(tmp_path, kubernetes: dict) -> os.PathLike:
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump({"name": "t", "kubernetes": kubernetes, "deployments": [
        {"name": "pod-0", "kind": "nim", "expect": "compliant", "kubernetes": {"namespace": "team-a", "selector": {"app": "pod-0"}}}]}),
        encoding="utf-8")
    return path


def test_the_early_child_reads_what_the_loaded_profile_plans(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "n").mkdir()
    tree(tmp_path / "m", 12)
    tree(tmp_path / "n", 2)
    # relative paths, ~ and a {path, namespace} entry: resolved as the profile's schema resolves them
    profile = profile_of(tmp_path, {"source": "manifests", "default_namespace": "team-a",
                                    "paths": ["m", {"path": str(tmp_path / "n"), "namespace": "team-n"}]})
    early = beside.start_early(profile)
    assert early is not None
    section = load_profile(profile).kubernetes
    reading = early.adopt(section)
    assert reading is not None and reading.expect is not None  # the early child's reading, not a new child's
    assert [(f.parent.name, f.name, ns) for f, ns in reading.files][-2:] == [("n", "pod-0.yaml", "team-n"), ("n", "pod-1.yaml", "team-n")]
    assert reading() is not None
    got = k8s.cached(section)
    k8s.clear_cache()
    here = k8s.cluster_state(section)
    assert [o.ref for o in got.observation.objects] == [o.ref for o in here.observation.objects]
    assert k8s.inventory(got.observation) == k8s.inventory(here.observation)
    early.cancel()  # adopted: a no-op
    with NO_CHILD:
        os.waitpid(reading.pid, os.WNOHANG)


def test_what_an_early_child_read_for_other_files_is_not_used(tmp_path):
    """The profile changed between the child's look and the load (or the look read it otherwise): the plan differs,
    and the objects are read here, from the files the loaded profile names."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    tree(tmp_path / "a", 10)
    for i in range(10):
        (tmp_path / "b" / f"pod-{i}.yaml").write_text(
            f"apiVersion: v1\nkind: Pod\nmetadata: {{name: other-{i}, namespace: team-b}}\nspec: {{containers: [{{name: m, image: x}}]}}\n",
            encoding="utf-8")
    early = beside.start_early(profile_of(tmp_path, {"source": "manifests", "paths": ["a"]}))
    assert early is not None
    section = Section("manifests", (str(tmp_path / "b"),))
    reading = early.adopt(section)
    assert reading is not None
    assert reading() is None and k8s.cached(section) is None  # handed back, not used
    state = k8s.cluster_state(section).observation
    assert sorted(o.ref for o in state.objects) == sorted(f"Pod/team-b/other-{i}" for i in range(10))


def test_what_the_early_child_cannot_look_at_is_left_to_a_child_started_once_the_profile_is_loaded(tmp_path):
    import json

    from nimwarden.k8s import load_manifests
    from nimwarden.k8s.snapshot import state_to_document

    (tmp_path / "m").mkdir()
    tree(tmp_path / "m", 5)
    snap = tmp_path / "snap.json"
    snap.write_text(json.dumps(state_to_document(load_manifests([tmp_path / "m"]))), encoding="utf-8")
    early = beside.start_early(profile_of(tmp_path, {"source": "snapshot", "paths": [str(snap)]}))
    assert early is not None
    section = Section("snapshot", (str(snap),))
    reading = early.adopt(section)
    assert reading is not None and reading.expect is None and reading.pid != early.pid  # start()'s child
    with NO_CHILD:
        os.waitpid(early.pid, os.WNOHANG)  # the early one is reaped
    assert reading() is not None and k8s.cached(section) is not None
    not_yaml = tmp_path / "broken.yaml"
    not_yaml.write_text("kubernetes: [unclosed\n", encoding="utf-8")
    early = beside.start_early(not_yaml)
    assert early is not None
    k8s.clear_cache()
    reading = early.adopt(Section("manifests", (str(tmp_path / "m"),)))
    assert reading is not None and reading.expect is None and reading() is not None


def test_an_early_child_never_adopted_is_reaped_and_nothing_is_forked_where_it_must_not(tmp_path, monkeypatch):
    (tmp_path / "m").mkdir()
    tree(tmp_path / "m", 300)
    early = beside.start_early(profile_of(tmp_path, {"source": "manifests", "paths": ["m"]}))
    assert early is not None
    early.cancel()
    with NO_CHILD:
        os.waitpid(early.pid, os.WNOHANG)
    early.cancel()  # twice: nothing more to do
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    assert beside.start_early(fifo) is None  # a pipe is read once, by the loader: never looked at before
    assert beside.start_early(tmp_path / "missing.yaml") is None  # the loader says what is wrong
    monkeypatch.setenv("NIMWARDEN_JUDGE_PROCESSES", "1")
    assert beside.start_early(profile_of(tmp_path, {"source": "manifests", "paths": ["m"]})) is None
