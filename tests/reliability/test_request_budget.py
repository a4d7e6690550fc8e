"""Request budget: `options.request_budget` caps and paces what an audit sends (nimwarden/budget.py).

Against a real counting server on loopback: with a cap of N the server sees at most N
connections and the controls left without budget are errors naming it; with a rate of R per
second the connections are spread at least 1/R apart. The budget's own arithmetic is checked
with a fake clock.
"""

from __future__ import annotations

import pytest
import yaml

from nimwarden.budget import BudgetExhausted, RequestBudget, budget_from_options
from nimwarden.errors import ConfigError
from tests.conftest import run_audit
from tests.reliability.faults import FaultServer


def test_cap_refuses_and_rate_paces_with_a_fake_clock():
    now, slept = [0.0], []
    budget = RequestBudget(3, 2.0, clock=lambda: now[0], sleep=lambda s: (slept.append(s), now.__setitem__(0, now[0] + s)))
    for _ in range(3):
        budget.take("127.0.0.1")
    with pytest.raises(BudgetExhausted, match="max_requests = 3"):
        budget.take("127.0.0.1")
    assert budget.used == 3 and slept == [0.5, 0.5]


@pytest.mark.parametrize("bad", [{"max_requests": 0}, {"max_requests": "many"}, {"max_rate_per_s": -1}, {"burst": 3}, [1]])
def test_bad_budget_options_are_one_config_error(bad):
    with pytest.raises(ConfigError, match="options.request_budget"):
        budget_from_options({"request_budget": bad}, lambda f, p: ConfigError("p.yaml", f, p))


def _audit(tmp_path, budget: dict):
    server = FaultServer("server-error", "127.0.0.150")
    url = f"http://127.0.0.150:{server.port}"
    dep = {"name": "counted", "kind": "triton", "expect": "compliant", "models": ["add"],
           "endpoints": {"http": url, "grpc": f"grpc://127.0.0.150:{server.port}", "metrics": url, "sagemaker": url}}
    profile = tmp_path / "budget.yaml"
    profile.write_text(yaml.safe_dump({"name": "budget", "scope": ["127.0.0.0/8"], "timeouts": {"connect_s": 1, "read_s": 1},
                                      "options": {"request_budget": budget}, "deployments": [dep]}))
    try:
        proc, summary = run_audit(profile, tmp_path / "reports", "suites/test_triton_api.py", timeout=180)
    finally:
        server.close()
    assert summary is not None, proc.stdout[-2000:] + proc.stderr[-2000:]
    return server, summary


def test_cap_bounds_what_the_target_sees(tmp_path):
    server, summary = _audit(tmp_path, {"max_requests": 8})
    refused = [r for r in summary["results"] if "request budget exhausted" in r["reason"]]
    print(f"\nbudget cap 8: server saw {server.connections} connections; {len(refused)} controls refused for budget")
    assert server.connections <= 8
    assert refused and all(r["status"] == "error" for r in refused)
    assert not [r for r in summary["results"] if r["status"] == "pass"]


def test_rate_spreads_the_requests(tmp_path):
    server, _ = _audit(tmp_path, {"max_requests": 12, "max_rate_per_s": 10})
    times = server.accepted_at
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    print(f"\nbudget rate 10/s: {len(times)} connections over {span:.2f}s")
    assert len(times) >= 4 and span >= (len(times) - 1) / 10 * 0.9
