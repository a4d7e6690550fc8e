"""The manifests read by a forked child beside start-up (nimwarden.k8s.beside): the same state, the
fallback to reading here, the secrets handed back, and when nothing is forked."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

from nimwarden import forked, redact
from nimwarden.errors import ConfigError
from nimwarden.k8s import beside
from nimwarden.k8s import source as k8s
from tests import corpus

POD = """apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: team-a, labels: {{app: {name}}}}}
spec:
  containers:
  - name: main
    image: nvcr.io/nim/x:1.0
"""


@dataclass(frozen=True)
class Section:  # the part of a profile's kubernetes: section the reading uses
    source: str
    paths: tuple
    default_namespace: str | None = None
    kubeconfig: str | None = None
    context: str | None = None
    namespaces: tuple = ()


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    k8s.clear_cache()
    monkeypatch.setenv("NIMWARDEN_JUDGE_PROCESSES", "2")  # fork whatever the size
    yield
    k8s.clear_cache()


def child_reads_first() -> None:
    """Give the child the time to read a few files before this process reads from the other end."""
    import time

    time.sleep(0.3)


def tree(tmp_path, n=3):
    for i in range(n):
        (tmp_path / f"pod-{i}.yaml").write_text(POD.format(name=f"pod-{i}"), encoding="utf-8")
    return Section("manifests", (str(tmp_path),))


def test_the_child_reads_what_this_process_would_have(tmp_path):
    section = tree(tmp_path, 8)
    join = beside.start(section)
    assert join is not None
    assert [f.name for f, _ in join.files] == [f"pod-{i}.yaml" for i in range(8)]  # one plan, read from both ends
    seconds = join()
    assert isinstance(seconds, float) and seconds >= 0
    got = k8s.cached(section)
    assert got is not None and got.observation is not None
    k8s.clear_cache()
    here = k8s.cluster_state(section)
    assert k8s.inventory(got.observation) == k8s.inventory(here.observation)
    assert sorted(o.ref for o in got.observation.objects) == sorted(o.ref for o in here.observation.objects)


def test_the_chart_corpus_read_beside_is_the_same_state():
    section = Section("manifests", tuple((str(corpus.CHARTS / case / "manifests"), ns) for case, (ns, _) in corpus.AUDIT.items()))
    section = _with_entries(section)
    join = beside.start(section)
    assert join is not None and join() is not None
    got = k8s.cached(section)
    k8s.clear_cache()
    here = k8s.cluster_state(section)
    assert got is not None and got.observation is not None
    assert [o.ref for o in got.observation.objects] == [o.ref for o in here.observation.objects]
    assert k8s.inventory(got.observation) == k8s.inventory(here.observation)


def _with_entries(section):
    @dataclass(frozen=True)
    class WithEntries(Section):
        def manifest_entries(self):
            return [(p, ns) for p, ns in self.paths]

    return WithEntries(section.source, section.paths)


def test_a_broken_manifest_is_left_to_this_process_which_says_it(tmp_path):
    section = tree(tmp_path)
    (tmp_path / "broken.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: [unclosed\n", encoding="utf-8")
    join = beside.start(section)
    assert join is not None
    child_reads_first()  # the first file, the broken one, is the child's
    assert join() is None and k8s.cached(section) is None  # nothing handed back, nothing kept
    with pytest.raises(ConfigError) as err:
        k8s.cluster_state(section)  # read here: the one-line error of a broken file, as before
    assert "broken.yaml" in str(err.value)


def slow_child(monkeypatch, log=None, seconds=0.05):
    """The child reads each file slowly (and says which, in ``log``), so that this process reads some of them."""
    import time

    from nimwarden.k8s import manifests

    parent, real = os.getpid(), manifests.read_files

    def reading(files, default_namespace):
        if log is not None:
            with open(log, "a") as f:
                f.writelines(f"{'child' if os.getpid() != parent else 'here'} {file.name}\n" for file, _ in files)
        if os.getpid() != parent:
            time.sleep(seconds)
        return real(files, default_namespace)

    monkeypatch.setattr(manifests, "read_files", reading)


def test_the_child_and_this_process_read_from_both_ends_until_they_meet(tmp_path, monkeypatch):
    (tmp_path / "m").mkdir()
    section = tree(tmp_path / "m", 30)
    slow_child(monkeypatch, tmp_path / "log")
    join = beside.start(section)
    assert join is not None
    child_reads_first()
    assert join() is not None
    who = [line.split() for line in (tmp_path / "log").read_text().splitlines()]
    child = [name for by, name in who if by == "child"]
    here = [name for by, name in who if by == "here"]
    order = [f.name for f, _ in join.files]
    assert child and here  # both read
    assert child == order[:len(child)]  # the child from the first file on
    assert here == order[::-1][:len(here)]  # this process from the last file back
    assert set(child) | set(here) == set(order) and len(set(child) & set(here)) <= 1  # they met: every file, once (or one twice)
    got = k8s.cached(section).observation
    k8s.clear_cache()
    assert [o.ref for o in got.objects] == [o.ref for o in k8s.cluster_state(section).observation.objects]


def test_a_broken_file_of_this_process_share_is_the_same_one_line_error(tmp_path, monkeypatch):
    section = tree(tmp_path, 6)
    (tmp_path / "zz-broken.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: [unclosed\n", encoding="utf-8")
    slow_child(monkeypatch, seconds=0.5)  # the last file, read here first, is the broken one
    join = beside.start(section)
    assert join is not None and join.files[-1][0].name == "zz-broken.yaml"
    with pytest.raises(ConfigError) as err:
        join()
    assert "zz-broken.yaml" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ChildProcessError):
        os.waitpid(join.pid, os.WNOHANG)  # the child was stopped and reaped
    assert k8s.cached(section) is None


def test_a_child_that_dies_leaves_the_reading_to_this_process(tmp_path, monkeypatch):
    from nimwarden.k8s import manifests

    section = tree(tmp_path)
    parent = os.getpid()
    real = manifests.read_files

    def dying(files, default_namespace):
        if os.getpid() != parent:
            os._exit(3)
        return real(files, default_namespace)

    monkeypatch.setattr(manifests, "read_files", dying)
    join = beside.start(section)
    assert join is not None
    child_reads_first()
    assert join() is None and k8s.cached(section) is None


def test_a_secret_the_child_learnt_is_known_here(tmp_path, monkeypatch):
    from nimwarden.k8s import manifests

    section = tree(tmp_path)
    secret = "beside-learnt-" + os.urandom(6).hex()
    parent = os.getpid()
    real = manifests.read_files

    def learning(files, default_namespace):
        if os.getpid() != parent:
            redact.register(secret)  # e.g. a literal key found while reading (in the child)
        return real(files, default_namespace)

    monkeypatch.setattr(manifests, "read_files", learning)
    join = beside.start(section)
    assert secret not in redact.known()
    child_reads_first()
    assert join is not None and join() is not None
    assert secret in redact.known() and secret not in redact.redact_text(f"value={secret}")


def test_nothing_is_forked_when_it_would_not_pay(tmp_path, monkeypatch):
    section = tree(tmp_path)
    monkeypatch.setenv("NIMWARDEN_JUDGE_PROCESSES", "1")
    assert beside.start(section) is None
    monkeypatch.delenv("NIMWARDEN_JUDGE_PROCESSES")
    assert beside.start(section) is None  # a few hundred bytes: below BESIDE_FROM
    monkeypatch.setattr(beside, "BESIDE_FROM", 1)
    monkeypatch.setattr(forked, "cpus", lambda: 1)
    assert beside.start(section) is None  # one CPU
    assert beside.start(Section("live", ())) is None  # a live cluster is read when a control asks
    k8s.cluster_state(section)
    monkeypatch.setattr(forked, "cpus", lambda: 2)
    assert beside.start(section) is None  # read already


def test_an_audit_of_a_broken_tree_read_beside_is_one_line_and_exit_2(tmp_path):
    import subprocess
    import sys

    import yaml

    (tmp_path / "m").mkdir()
    tree(tmp_path / "m")
    (tmp_path / "m" / "broken.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: [unclosed\n", encoding="utf-8")
    profile = tmp_path / "profile.yaml"
    profile.write_text(yaml.safe_dump({"name": "t", "kubernetes": {"source": "manifests", "paths": [str(tmp_path / "m")]},
                                       "deployments": [{"name": "pod-0", "kind": "nim", "expect": "compliant", "kubernetes": {"namespace": "team-a",
                                                                                                      "selector": {"app": "pod-0"}}}]}))
    env = dict(os.environ, NIMWARDEN_JUDGE_PROCESSES="2")
    proc = subprocess.run([sys.executable, "-m", "nimwarden.cli", "audit", "--target", str(profile), "--reports-dir", str(tmp_path / "r")],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and "broken.yaml" in lines[0] and "Traceback" not in proc.stderr, lines
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").rglob("summary.json"))  # nothing judged, nothing written


def test_a_reading_never_joined_is_stopped_and_reaped(tmp_path):
    section = tree(tmp_path, 50)
    reading = beside.start(section)
    assert reading is not None
    pid = reading.pid
    reading.cancel()
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reaped: no zombie, no child left waiting on the pipe
    reading.cancel()  # twice: nothing more to do
    assert k8s.cached(section) is None
    joined = beside.start(section)
    assert joined is not None and joined() is not None
    joined.cancel()  # after the join: a no-op
    assert k8s.cached(section) is not None


def _children() -> list[int]:
    me, out = os.getpid(), []
    for stat in os.listdir("/proc"):
        if stat.isdigit():
            try:
                fields = open(f"/proc/{stat}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == me:
                out.append(int(stat))
    return out


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc for this process's children")
def test_an_audit_stopped_before_it_needs_the_objects_leaves_no_child(tmp_path, capsys):
    """A bad waiver file stops the run before the objects are joined: the reading child is stopped and reaped,
    not left waiting on its pipe for as long as the calling process lives (a test session, a library caller)."""
    import yaml

    from nimwarden import cli

    (tmp_path / "m").mkdir()
    tree(tmp_path / "m", 400)  # more than a pipe's buffer to hand back
    (tmp_path / "waivers.yaml").write_text("waivers: [unclosed\n", encoding="utf-8")
    profile = tmp_path / "profile.yaml"
    profile.write_text(yaml.safe_dump({"name": "t", "waivers": "waivers.yaml",
                                       "kubernetes": {"source": "manifests", "paths": [str(tmp_path / "m")]},
                                       "deployments": [{"name": "pod-0", "kind": "nim", "expect": "compliant",
                                                        "kubernetes": {"namespace": "team-a", "selector": {"app": "pod-0"}}}]}))
    before = set(_children())
    code = cli.main(["audit", "--target", str(profile), "--reports-dir", str(tmp_path / "r")])
    assert code == 2 and "waivers.yaml" in capsys.readouterr().err
    assert set(_children()) - before == set()


def test_a_snapshot_is_read_whole_by_the_child(tmp_path):
    import json

    from nimwarden.k8s import load_manifests
    from nimwarden.k8s.snapshot import state_to_document

    (tmp_path / "m").mkdir()
    tree(tmp_path / "m", 5)
    snap = tmp_path / "snap.json"
    snap.write_text(json.dumps(state_to_document(load_manifests([tmp_path / "m"]))), encoding="utf-8")
    section = Section("snapshot", (str(snap),))
    join = beside.start(section)
    assert join is not None and join.files == []  # nothing of a snapshot is read here
    assert join() is not None
    got = k8s.cached(section)
    k8s.clear_cache()
    here = k8s.cluster_state(section)
    assert sorted(o.ref for o in got.observation.objects) == sorted(o.ref for o in here.observation.objects)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    k8s.clear_cache()
    join = beside.start(Section("snapshot", (str(broken),)))
    assert join is not None and join() is None  # the child hands back nothing: the runner reads it, and says why
    with pytest.raises(ConfigError):
        k8s.cluster_state(Section("snapshot", (str(broken),)))
