"""The Ray controls against the lab's real Ray heads (the PyPI ``ray[default]`` wheel, CPU only;
nimwarden/lab/ray.py), end to end through `nimwarden audit`, and proof that the probes are read-only:
both heads show no job after the audit.

The lab runs one head per deployment, in the deployment's network namespace like a multi-node NIM's
leader pod: ``hardened`` with Ray's token auth (RAY_AUTH_MODE=token) and its dashboard only
port-forwarded, ``exposed`` without authentication and with its dashboard, GCS and client server
published on its edge address.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from nimwarden.lab import ray
from tests.conftest import dead_port, lab_profile, run_audit

pytestmark = [pytest.mark.lab, pytest.mark.slow]

RAY_CONTROLS = ("RAY-DASHBOARD-001", "RAY-PORTS-001", "RAY-NETPOL-001")


@pytest.fixture(scope="module")
def ray_audit(lab_state, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ray")
    t0 = time.monotonic()
    proc, summary = run_audit(lab_profile(tmp, lab_state), tmp / "reports", "suites/test_gpu_platform.py")
    return proc, summary, time.monotonic() - t0


def _status(summary, deployment, control) -> str:
    (row,) = [r for r in summary["results"] if r["deployment"] == deployment and r["control"] == control]
    return row["status"]


@pytest.mark.parametrize("control", RAY_CONTROLS)
def test_hardened_passes_exposed_fails(ray_audit, control):
    proc, summary, took = ray_audit
    assert summary is not None, proc.stderr[-2000:]
    print(f"\ngpu-platform family on the lab: {took:.1f}s")
    assert _status(summary, "hardened", control) == "pass"
    assert _status(summary, "exposed", control) == "fail"


def test_the_audit_submitted_no_job(ray_audit, lab_state):
    """Read-only: the probes listed jobs and opened TCP connections; neither head has a job afterwards."""
    _, summary, _ = ray_audit
    assert summary is not None
    deps = lab_state["deployments"]
    token = Path(deps["hardened"]["ray_token_file"]).read_text().strip()
    assert ray.jobs(f"http://{deps['hardened']['ray']}", token) == []
    assert ray.jobs(f"http://{deps['exposed']['ray']}") == []


def test_hardened_head_refuses_a_caller_without_the_token(lab_state):
    import urllib.error

    with pytest.raises(urllib.error.HTTPError) as exc:
        ray.jobs(f"http://{lab_state['deployments']['hardened']['ray']}")
    assert exc.value.code in (401, 403)


def test_a_dashboard_that_does_not_answer_is_an_error(lab_state, tmp_path):
    profile = lab_profile(tmp_path, lab_state)
    data = yaml.safe_load(profile.read_text())
    (exposed,) = [d for d in data["deployments"] if d["name"] == "exposed"]
    exposed["endpoints"]["ray"] = f"http://127.0.0.1:{dead_port()}"
    profile.write_text(yaml.safe_dump(data))
    proc, summary = run_audit(profile, tmp_path / "reports", "suites/test_gpu_platform.py", "-k", "ray_dashboard")
    assert summary is not None, proc.stderr[-2000:]
    assert _status(summary, "exposed", "RAY-DASHBOARD-001") == "error"
