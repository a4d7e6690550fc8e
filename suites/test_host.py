"""Host / in-container suite (family host): the running tritonserver process, inspected with
testinfra (local:// in the lab, kubectl:// in a cluster via options.host.testinfra)."""

from __future__ import annotations

import pytest

from nimwarden.judges import k8s_host as judge
from nimwarden.outcome import incomplete
from nimwarden.probes import host as probe

pytestmark = pytest.mark.kinds("triton")


def _server(deployment, verdict):
    located = probe.locate_server(deployment)
    bad = incomplete(located)
    if bad:
        verdict(bad)
        return None, None
    loc = located.observation
    return probe.get_host(loc.spec), loc


@pytest.mark.control("HOST-USER-001")
def test_server_user(deployment, verdict):
    host, loc = _server(deployment, verdict)
    if host:
        verdict(judge.process_user(probe.probe_process(host, loc.pid)), subject=f"{loc.spec} pid {loc.pid}")


def _directories(deployment, verdict, roles, what):
    host, loc = _server(deployment, verdict)
    if not host:
        return
    info = probe.probe_process(host, loc.pid)
    bad = incomplete(info)
    if bad:
        return verdict(bad)
    verdict(judge.not_writable(probe.probe_directories(host, info.observation, roles), what), subject=f"{loc.spec} pid {loc.pid}")


@pytest.mark.control("HOST-CODEDIRS-001")
def test_code_directories_not_writable(deployment, verdict):
    _directories(deployment, verdict, ("backend-directory", "repoagent-directory", "cache-directory"),
                 "backend/repoagent/cache directories")


@pytest.mark.control("HOST-MODELRO-001")
def test_model_repository_read_only(deployment, verdict):
    _directories(deployment, verdict, ("model-repository",), "model repository")


@pytest.mark.control("HOST-ENVSECRET-001")
def test_no_secret_in_environment(deployment, verdict):
    host, loc = _server(deployment, verdict)
    if host:
        verdict(judge.environment_secrets(probe.probe_environment(host, loc.pid)), subject=f"{loc.spec} pid {loc.pid}")
