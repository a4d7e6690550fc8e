"""Host controls against the lab's real tritonserver processes: hardened passes, exposed fails."""

from __future__ import annotations

import os

import pytest

from nimwarden.families.host import judge, probe
from nimwarden.outcome import Status

pytestmark = [pytest.mark.lab, pytest.mark.skipif(os.geteuid() != 0, reason="the lab runs hardened as another user only when root")]


@pytest.fixture(scope="module")
def servers(lab_state):
    """The session's lab (tests/conftest.py: in a world-traversable directory, so the hardened server drops to
    ``nobody``; under pytest's 0700 basetemp it would run as root, which these controls would rightly fail).
    Read only: the controls look at the servers' processes, users, directories and environment."""
    assert lab_state["deployments"]["hardened"].get("run_as") == "nobody", lab_state["deployments"]["hardened"].get("run_as")
    h = probe.get_host("local://")
    out = {}
    for name, dep in lab_state["deployments"].items():
        # The lab records each server's PID (behind its port-forward the --http-port differs).
        assert dep["pid"] in probe.find_tritonserver_pids(h), (name, dep["pid"])
        out[name] = (h, probe.process_info(h, dep["pid"]))
    return out


def test_server_user(servers):
    h, info = servers["hardened"]
    assert judge.process_user(probe.probe_process(h, info.pid)).status == Status.PASS
    h, info = servers["exposed"]
    assert judge.process_user(probe.probe_process(h, info.pid)).status == Status.FAIL


@pytest.mark.parametrize("roles", [("backend-directory", "repoagent-directory", "cache-directory"), ("model-repository",)])
def test_directories(servers, roles):
    h, info = servers["hardened"]
    good = judge.not_writable(probe.probe_directories(h, info, roles), "dirs")
    assert good.status == Status.PASS, good.reason
    h, info = servers["exposed"]
    assert judge.not_writable(probe.probe_directories(h, info, roles), "dirs").status == Status.FAIL


def test_environment_of_hardened_server_is_clean(servers):
    h, info = servers["hardened"]
    assert judge.environment_secrets(probe.probe_environment(h, info.pid)).status == Status.PASS
