"""NIM-ENGINECVE-001: the engines inside a NIM — the release → engine → advisory chain, read live from the
lab's NIM stand-in (a labelled stand-in: it reports a release and runs no engine) or from an image tag."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from nimwarden.families.nim_api import engines, probe
from nimwarden.lab import nimstub
from nimwarden.outcome import Attempt, Status
from nimwarden.target import load_target

TABLE = engines.load_table()


def release(name: str, where: str = "GET http://nim/v1/version") -> Attempt:
    return Attempt("nim.version", where, engines.NimRelease(name, where, {}), None)


def test_the_table_is_sourced_and_dated():
    assert {"2.1.5", "2.1.6"} <= set(TABLE.releases)
    assert TABLE.releases["2.1.5"]["vllm"] == "0.31.0" and TABLE.releases["2.1.6"]["vllm"] == "0.32.0"
    assert all(TABLE.sources[r].startswith("https://docs.nvidia.com/nim/large-language-models/") for r in TABLE.releases)
    for a in TABLE.advisories:
        assert a.url.startswith("https://") and a.cvss > 0 and (a.fixed or a.affected_through), a.id
    stamp = TABLE.stamp()
    assert stamp["as_of"] == "2026-10-27" and stamp["checked"] == "2026-12-06" and not stamp["stale"]


def test_a_release_whose_engine_is_in_range_fails_naming_the_chain():
    out = engines.engine_cves(release("2.1.5"))
    assert out.status is Status.FAIL
    assert "NIM 2.1.5 → vLLM 0.31.0 → CVE-2026-115911 (GHSA-542m-9234-8gvf, PYSEC-2026-4344, CVSS 6.5), fixed in vLLM 0.32.0" in out.reason
    assert out.severity == "medium" and "likely vulnerable" in out.reason
    assert {c["id"] for c in out.evidence["chains"]} == {"CVE-2026-115911"}
    assert out.evidence["release_notes"].endswith("vLLM 0.31.0 and SGLang 0.5.21)")


def test_a_release_past_the_fix_passes():
    out = engines.engine_cves(release("2.1.6"))
    assert out.status is Status.PASS and "vLLM 0.32.0" in out.reason and "sources checked 2026-12-06" in out.reason


def test_an_older_release_collects_every_advisory_of_its_engine():
    out = engines.engine_cves(release("2.0.2"))  # vLLM 0.18.0
    ids = {c["id"] for c in out.evidence["chains"]}
    assert {"CVE-2026-105757", "CVE-2026-105760", "CVE-2026-105754", "CVE-2026-105756", "PYSEC-2026-2303"} <= ids
    assert "CVE-2026-115911" not in ids  # introduced in 0.19.0


@pytest.mark.parametrize("name, words", [("2.1.7", "newer than the newest release it maps (2.1.6)"),
                                         ("1.3.3", "it maps 2.0.1, 2.0.2, 2.0.5, 2.1.5, 2.1.6"),
                                         ("latest", "it maps")])
def test_a_release_the_table_does_not_know_is_an_error(name, words):
    out = engines.engine_cves(release(name))
    assert out.status is Status.ERROR and words in out.reason and "which vLLM / TensorRT-LLM it bundles is unknown" in out.reason


def test_nothing_read_is_an_error():
    assert engines.engine_cves(Attempt("nim.version", "the NIM release", None, "connection refused")).status is Status.ERROR


def test_engine_versions_order_release_candidates_before_releases():
    assert engines.engine_version("1.3.0rc24") < engines.engine_version("1.3.0") < engines.engine_version("1.3.1")
    trt = next(a for a in TABLE.advisories if a.engine == "tensorrt-llm")
    assert trt.affects(engines.engine_version("1.3.0rc24")) and not trt.affects(engines.engine_version("1.3.0"))


def test_parse_refuses_rows_it_could_not_rely_on():
    base = {"version": "x", "as_of": "2026-10-27", "checked": {"date": "2026-12-06"}}
    with pytest.raises(ValueError, match="needs at least one engine version"):
        engines.parse_table({**base, "nim_releases": {"2.1.5": {"vllm": "0.31.0"}}})  # no source
    row = {"id": "X", "engine": "vllm", "cvss": 5, "title": "t", "url": "u"}
    with pytest.raises(ValueError, match="exactly one of fixed and affected_through"):
        engines.parse_table({**base, "advisories": [row]})
    with pytest.raises(ValueError, match="unknown engine"):
        engines.parse_table({**base, "advisories": [{**row, "engine": "llama.cpp", "fixed": "1.0"}]})


@pytest.fixture
def stand_in():
    """The lab's NIM stand-in (not NVIDIA NIM) reporting a release, in this process."""
    servers = []

    def start(release: str | None) -> str:
        srv = nimstub.serve("127.0.0.1", 0, None, release=release)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}"

    yield start
    for srv in servers:
        srv.shutdown()


def profile(tmp_path: Path, nim_url: str):
    p = tmp_path / "t.yaml"
    p.write_text(f"name: t\nscope: [127.0.0.1]\ndeployments:\n  - name: d\n    kind: nim\n    expect: compliant\n"
                 f"    endpoints: {{http: '{nim_url}'}}\n")
    target = load_target(p, [])
    return target, target.deployments[0]


def test_the_release_is_read_live_from_v1_version(tmp_path, stand_in):
    target, dep = profile(tmp_path, stand_in("2.1.5"))
    got = probe.nim_release(target, dep)
    assert got.completed and got.observation.release == "2.1.5" and got.observation.read_from.endswith("/v1/version")
    assert engines.engine_cves(got).status is Status.FAIL
    target, dep = profile(tmp_path, stand_in("2.1.6"))
    assert engines.engine_cves(probe.nim_release(target, dep)).status is Status.PASS


def test_a_nim_that_does_not_answer_and_has_no_image_is_an_error(tmp_path):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    target, dep = profile(tmp_path, f"http://127.0.0.1:{port}")
    got = probe.nim_release(target, dep)
    assert not got.completed and "no source said which NIM release this is" in got.error
    assert engines.engine_cves(got).status is Status.ERROR


def test_the_image_tag_stands_in_when_the_nim_does_not_answer(tmp_path, monkeypatch):
    target, dep = profile(tmp_path, "http://127.0.0.1:9")
    monkeypatch.setattr(probe, "_version_answer", lambda url, target, headers=None: (None, "GET …/v1/version: connection refused"))
    monkeypatch.setattr(probe, "_image_release", lambda target, dep: ("2.1.5", "image tag nvcr.io/nim/meta/llama-3.1-8b-instruct:2.1.5"))
    out = engines.engine_cves(probe.nim_release(target, dep))
    assert out.status is Status.FAIL and "(image tag nvcr.io/nim/meta/llama-3.1-8b-instruct:2.1.5)" in out.reason
    assert probe.NIM_IMAGE.search("nvcr.io/nim/meta/llama-3.1-8b-instruct:2.1.5").group("tag") == "2.1.5"
    assert probe.NIM_IMAGE.search("nvcr.io/nvidia/tritonserver:26.11-py3") is None


def test_no_endpoint_and_no_nim_image_in_readable_workloads_does_not_apply(tmp_path, monkeypatch):
    """A deployment declared kind nim that runs no NIM (the NIM Operator's own chart): the subject does not exist.
    With an endpoint that does not answer, or cluster state that cannot be read, it stays an error."""
    p = tmp_path / "t.yaml"
    p.write_text("name: t\nscope: [127.0.0.1]\ndeployments:\n  - name: d\n    kind: nim\n    expect: compliant\n")
    target = load_target(p, [])
    dep = target.deployments[0]
    monkeypatch.setattr(probe, "_image_release", lambda target, dep: (None, probe.NO_NIM_IMAGE))
    out = engines.engine_cves(probe.nim_release(target, dep))
    assert out.status is Status.NOT_APPLICABLE and "run no NIM image" in out.reason
    monkeypatch.setattr(probe, "_image_release", lambda target, dep: (None, "cluster state: 403 Forbidden"))
    assert engines.engine_cves(probe.nim_release(target, dep)).status is Status.ERROR
