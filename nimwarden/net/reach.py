"""Live reachability probes: run the agent in each source position, collect allowed/blocked/error.

A :class:`Position` says how to run a command from a source's network
position: in the lab a Linux network namespace (``ip netns exec <ns>``), in a
cluster a short-lived probe pod that carries the source's labels and runs the
same agent (``reach_agent.py probe``; :mod:`nimwarden.k8s.probe_pods`). One
agent per position, up to ``max_agents`` positions at once; inside each agent at
most ``concurrency // positions`` connects run in parallel, each with ``timeout_s``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from nimwarden.netpol.enforcement import ERROR, Flow, Observation
from nimwarden.outcome import Attempt, attempt

# The agent is standard-library only: run it as a file with -I -S so that it starts
# without site-packages (fast, and independent of how nimwarden is installed).
AGENT_ARGV = (sys.executable, "-I", "-S", str(Path(__file__).with_name("reach_agent.py")), "probe")


class AgentError(Exception):
    """The agent could not be run in a position or did not answer; every flow of that position is an error."""


@dataclass(frozen=True)
class Position:
    """Where probes start from: a name and how to run the agent there.

    Either ``argv_prefix`` (a local command that enters the position — ``ip netns
    exec <ns>`` in the lab; ``()`` for this process's own namespace) or ``runner``,
    a callable ``runner(job, deadline_s) -> agent stdout`` that raises on failure
    (an in-cluster probe pod: :mod:`nimwarden.k8s.probe_pods`).
    """

    name: str
    argv_prefix: tuple[str, ...] = ()
    runner: Callable[[dict, float], str] | None = field(default=None, compare=False)

    def command(self) -> list[str]:
        return [*self.argv_prefix, *AGENT_ARGV]

    def execute(self, job: dict, deadline_s: float) -> str:
        if self.runner is not None:
            try:
                return self.runner(job, deadline_s)
            except Exception as exc:  # noqa: BLE001 - any failure to run the agent is an error for its flows
                raise AgentError(str(exc) or type(exc).__name__) from None
        try:
            proc = subprocess.run(self.command(), input=json.dumps(job), capture_output=True, text=True, timeout=deadline_s, check=False)
        except subprocess.TimeoutExpired:
            raise AgentError(f"agent in {self.name} did not finish within {deadline_s:.0f} s") from None
        except OSError as exc:
            raise AgentError(f"cannot start the agent in {self.name}: {exc}") from None
        if proc.returncode != 0:
            why = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
            raise AgentError(f"agent in {self.name} failed: {why}")
        return proc.stdout


def _run_agent(position: Position, flows: Sequence[Flow], timeout_s: float, concurrency: int) -> list[Observation]:
    job = {
        "timeout_s": timeout_s,
        "concurrency": concurrency,
        "targets": [{"id": str(i), "address": f.address, "port": f.port, "protocol": f.protocol} for i, f in enumerate(flows)],
    }
    # The agent's own deadline: every wave of connects times out, plus interpreter start-up.
    waves = -(-len(flows) // max(1, concurrency))
    deadline = 5.0 + waves * (timeout_s + 0.5)
    t0 = time.monotonic()
    try:
        stdout = position.execute(job, deadline)
    except AgentError as exc:
        return [Observation(f, ERROR, str(exc), time.monotonic() - t0) for f in flows]
    try:
        results = {r["id"]: r for r in json.loads(stdout.strip().splitlines()[-1])["results"]}
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        return [Observation(f, ERROR, f"agent in {position.name} answered unparseable output: {exc}") for f in flows]
    out = []
    for i, f in enumerate(flows):
        r = results.get(str(i))
        if r is None or r.get("result") not in ("allowed", "blocked", "error"):
            out.append(Observation(f, ERROR, f"agent in {position.name} returned no result for this flow"))
        else:
            out.append(Observation(f, r["result"], str(r.get("detail", "")), float(r.get("elapsed_s", 0.0))))
    return out


def probe_flows(flows: Sequence[Flow], positions: Mapping[str, Position], timeout_s: float = 0.8, concurrency: int = 32,
                max_agents: int | None = None) -> list[Observation]:
    """Probe every flow from its source's position; a flow whose source has no position is an error.

    At most ``max_agents`` positions run at once (all of them when None).
    """
    by_source: dict[str, list[Flow]] = {}
    for f in flows:
        by_source.setdefault(f.source, []).append(f)
    missing = [Observation(f, ERROR, f"no probe position for source {f.source}") for s, fs in by_source.items() if s not in positions for f in fs]
    work = [(positions[s], fs) for s, fs in by_source.items() if s in positions]
    per_agent = max(1, concurrency // max(1, len(work)))
    results: dict[Flow, Observation] = {o.flow: o for o in missing}
    with ThreadPoolExecutor(max_workers=max(1, min(len(work), max_agents or len(work)))) as pool:
        for observations in pool.map(lambda item: _run_agent(item[0], item[1], timeout_s, per_agent), work):
            results.update({o.flow: o for o in observations})
    return [results[f] for f in flows]


def probe_attempt(flows: Sequence[Flow], positions: Mapping[str, Position], timeout_s: float = 0.8, concurrency: int = 32,
                  max_agents: int | None = None) -> Attempt[list[Observation]]:
    """The probe as an Attempt (the suite's view); an empty plan is an incomplete attempt."""
    request = f"reach {len(flows)} flow(s) from {len({f.source for f in flows})} position(s), timeout {timeout_s:g} s"

    def run() -> list[Observation]:
        if not flows:
            raise ValueError("the probe plan is empty")
        return probe_flows(flows, positions, timeout_s, concurrency, max_agents)

    return attempt("netpol.reach", request, run)
