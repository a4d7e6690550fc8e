"""One read, no circle: TRITON-CVE-001's backend detection and TRITON-CONFIGSECRET-001 share one read of
the model configurations, and the triton-api modules import one another without a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

from nimwarden.families.triton_api import probe as probe_module
from nimwarden.families.triton_api.exposure import exposure_from
from nimwarden.families.triton_api.model_config import ANONYMOUS, REFUSED, DocumentRead, ModelDocuments
from nimwarden.families.triton_api.probe import TritonProbe
from nimwarden.outcome import Attempt
from nimwarden.target import load_target

PACKAGE = Path(probe_module.__file__).resolve().parent


def imports_of(path: Path) -> set[str]:
    """Every triton_api module a module imports, at module level or inside a function."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith("nimwarden.families.triton_api."):
                out.add(node.module.rsplit(".", 1)[1])
            elif node.module == "nimwarden.families.triton_api":
                out.update(a.name for a in node.names)
    return out - {path.stem}


def test_the_triton_api_modules_import_each_other_without_a_cycle():
    graph = {p.stem: imports_of(p) for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    assert "probe" not in graph["model_config"], "model_config must stay pure: it imports no probe"
    seen, stack = set(), []

    def visit(node: str) -> None:
        assert node not in stack, f"import cycle: {' -> '.join([*stack, node])}"
        if node in seen:
            return
        stack.append(node)
        for nxt in graph.get(node, ()):
            visit(nxt)
        stack.pop()
        seen.add(node)

    for module in graph:
        visit(module)


def profile(tmp_path: Path):
    p = tmp_path / "t.yaml"
    p.write_text("name: t\nscope: [127.0.0.1]\ndeployments:\n  - name: d\n    kind: triton\n    expect: compliant\n"
                 "    endpoints: {http: 'http://127.0.0.1:9', grpc: 'grpc://127.0.0.1:9'}\n    models: [add]\n")
    return load_target(p, [])


def documents(*reads: DocumentRead) -> Attempt[ModelDocuments]:
    return Attempt("triton.http", "model configuration and metadata over http",
                   ModelDocuments("http", ("add",), "the profile", "refused (403)", None, reads), None)


def test_cve_and_configsecret_share_one_read_of_the_model_configurations(tmp_path, monkeypatch):
    target = profile(tmp_path)
    calls = []

    def fake_read(probe, protocol):
        calls.append(protocol)
        return documents(DocumentRead("add", "config", "GET /v2/models/add/config", ANONYMOUS, "200", ("p",), (), ("python",)))

    monkeypatch.setattr(probe_module, "_read_documents", fake_read)
    p = TritonProbe(target, target.deployments[0])
    monkeypatch.setattr(p, "health", lambda protocol: [Attempt("t", "health", None, "not asked here")])
    monkeypatch.setattr(p, "model_load", lambda protocol: Attempt("t", "load", None, "not asked here"))
    monkeypatch.setattr(p, "category", lambda c, protocol: [])
    observations = p.exposure_observations()
    secrets_read = p.model_documents("http")
    assert calls == ["http"], calls  # read once, over the first declared protocol, for both controls
    assert observations["model_documents"] is secrets_read
    assert exposure_from(observations)["backend:python"][0] is True
    assert "model add's config (read anonymous over http) says python" in exposure_from(observations)["backend:python"][1]


def test_backends_unknown_when_the_one_read_could_not_read_a_config():
    refused = documents(DocumentRead("add", "config", "GET /v2/models/add/config", REFUSED, "403"))
    state, why = exposure_from({"model_documents": refused})["backend:python"]
    assert state is None and "add (refused: 403)" in why
    broken = Attempt("triton.http", "model configuration and metadata over http", None, "connection refused")
    state, why = exposure_from({"model_documents": broken})["backend:dali"]
    assert state is None and "connection refused" in why
    none = documents(DocumentRead("add", "config", "GET /v2/models/add/config", ANONYMOUS, "200", (), (), ("onnxruntime",)))
    assert exposure_from({"model_documents": none})["backend:python"] == (False, "no model read uses the python backend")
