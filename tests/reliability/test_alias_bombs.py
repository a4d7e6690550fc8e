"""YAML alias bombs and absurd nesting in files nimwarden did not write: refused in one line, at once, never walked.

A rendered manifest in a pull request is input from whoever opened it. A kilobyte of anchors aliasing
anchors ("billion laughs") had a review audit (`targets/helm-review.yaml` over such a tree) run past two
minutes and 3.4 GB before it was killed; Kubernetes' YAML reader refuses such a document, and so does
nimwarden now (nimwarden/yaml_bounded.py): invalid YAML, one line naming the file, exit 2. The same bound
holds for the profile, a waivers file, and the YAML a NeMo Platform reads from its ConfigMap (that control
says "error", fail closed). A document nested deeper than 200 levels is refused too: deeper, a RecursionError
somewhere (reading it, or a later walk of it) depended on how deep the stack already was.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import yaml

from nimwarden import yaml_bounded
from tests.conftest import ROOT, run_audit


def laughs(levels: int = 10, indent: str = "") -> str:
    """Anchors aliasing anchors: 9**levels strings from a few hundred bytes."""
    lines = [f'{indent}l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"{indent}l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def _review(tmp_path, bad_document: str):
    rendered = tmp_path / "rendered"
    rendered.mkdir()
    (rendered / "nim-llm.yaml").write_text((ROOT / "targets" / "rendered" / "nim-llm.yaml").read_text())
    (rendered / "extra.yaml").write_text(bad_document)
    profile = yaml.safe_load((ROOT / "targets" / "helm-review.yaml").read_text())
    profile["kubernetes"]["paths"] = [str(rendered)]
    path = tmp_path / "review.yaml"
    path.write_text(yaml.safe_dump(profile))
    return path, rendered / "extra.yaml"


def _one_line_exit_2(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-1500:], proc.stderr[-1500:])
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert all(w in proc.stderr for w in words), proc.stderr


BOMB = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: laughs, namespace: nim}\ndata:\n" + laughs(indent="  ")
SELF = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: self, namespace: nim}\ndata: &x {k: *x}\n"


def nested(depth: int) -> str:
    return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: deep, namespace: nim}\ndata:\n  k: " + "[" * depth + "]" * depth + "\n"


@pytest.mark.parametrize(("document", "words"), [(BOMB, "excessive aliasing"), (SELF, "inside its own anchor"),
                                                  (nested(330), "nested deeper than 200 levels")], ids=["bomb", "self", "deep"])
def test_a_manifest_alias_bomb_is_one_line_exit_2_in_a_moment(tmp_path, document, words):
    profile, bad = _review(tmp_path, document)
    started = time.monotonic()
    proc, summary = run_audit(profile, tmp_path / "reports", timeout=60)
    assert time.monotonic() - started < 30 and summary is None  # bomb: 120 s and more, 3.4 GB, before; deep: RecursionError
    _one_line_exit_2(proc, str(bad), "invalid YAML", words)
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    found = subprocess.run([sys.executable, "-m", "nimwarden.cli", "discover", "--manifests", str(bad.parent), "--out",
                            str(tmp_path / "found.yaml")], cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)
    _one_line_exit_2(found, str(bad), words)


def test_a_profile_or_a_waivers_file_with_an_alias_bomb_is_one_line_exit_2(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    profile = tmp_path / "bomb.yaml"
    profile.write_text((ROOT / "targets" / "helm-review.yaml").read_text() + "x-laughs:\n" + laughs(indent="  "))
    proc = subprocess.run([sys.executable, "-m", "nimwarden.cli", "validate", "--target", str(profile)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, env=env)
    _one_line_exit_2(proc, str(profile), "excessive aliasing")
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text("waivers: []\nx:\n" + laughs(indent="  "))
    review, _ = _review(tmp_path, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: fine, namespace: nim}\n")
    with_waivers = yaml.safe_load(review.read_text())
    with_waivers["waivers"] = str(waivers)
    review.write_text(yaml.safe_dump(with_waivers))
    proc, summary = run_audit(review, tmp_path / "reports", timeout=60)
    _one_line_exit_2(proc, str(waivers), "excessive aliasing")


def test_a_nemo_platform_config_holding_an_alias_bomb_is_an_error_not_a_hang(tmp_path):
    rendered = (ROOT / "tests" / "fixtures" / "nemo" / "platform" / "auth-on" / "rendered.yaml").read_text()
    head, rest = rendered.split("  config.yaml: |\n", 1)
    body = rest.split("\n---", 1)
    bombed = head + "  config.yaml: |\n" + laughs(indent="    ") + ("\n---" + body[1] if len(body) > 1 else "")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "rendered.yaml").write_text(bombed)
    profile = {"name": "nemo-bomb", "kubernetes": {"source": "manifests", "paths": [{"path": str(tmp_path / "m"), "namespace": "nemo-platform"}]},
               "deployments": [{"name": "platform", "kind": "nemo", "expect": "compliant",
                                "kubernetes": {"namespace": "nemo-platform", "selector": {"app.kubernetes.io/component": "nmp-api"}}}]}
    path = tmp_path / "nemo.yaml"
    path.write_text(yaml.safe_dump(profile))
    started = time.monotonic()
    proc, summary = run_audit(path, tmp_path / "reports", "suites/test_nemo.py", "-k", "spec", timeout=120)
    assert time.monotonic() - started < 60 and summary is not None, proc.stderr[-2000:]
    auth = next(r for r in summary["results"] if r["control"] == "NEMO-SPEC-AUTH-001")
    assert auth["status"] == "error" and "excessive aliasing" in auth["reason"], auth
    assert proc.returncode == 3  # could not evaluate, nothing failed: never a pass


def test_the_bound_counts_what_aliases_add_not_what_a_document_holds():
    shared = "env: &env [{name: A, value: '1'}, {name: B, value: '2'}]\nc1: {env: *env}\nc2: {env: *env}\n"
    assert yaml_bounded.load(shared)["c2"]["env"][1]["name"] == "B"  # an anchor or two, as hand-written YAML has
    big = "items:\n" + "".join(f"- {{name: n{i}, v: [1, 2, 3]}}\n" for i in range(30_000))  # 240,000 nodes, no alias
    assert len(yaml_bounded.load(big.replace("items:", "items: &all"))["items"]) == 30_000
    with pytest.raises(yaml.YAMLError, match="excessive aliasing"):
        yaml_bounded.load(laughs(levels=7))  # 9**7 = 4.8 million strings
    assert list(yaml_bounded.load_all("a: &x [1]\nb: *x\n---\nc: 2\n")) == [{"a": [1], "b": [1]}, {"c": 2}]


@pytest.mark.parametrize("runner", [(), ("--", "-n", "2")], ids=["in-process", "pytest-xdist"])
def test_a_document_nested_just_under_the_bound_is_judged_and_reported(tmp_path, runner):
    profile, _ = _review(tmp_path, nested(199))  # every later walk (judges, redaction, pickling, reports) takes it
    proc, summary = run_audit(profile, tmp_path / "reports", *runner, timeout=180)
    assert proc.returncode == 1 and summary is not None and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert not [r for r in summary["results"] if "RecursionError" in r.get("reason", "")]
