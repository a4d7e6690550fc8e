"""In-container / host judges (family host): who the server runs as, whether it can change the
code and models it loads, and whether secrets sit in its environment. Pure functions over the
attempts of :mod:`nimwarden.families.host.probe`; incomplete attempts are errors."""

from __future__ import annotations

from collections.abc import Sequence

from nimwarden.outcome import Attempt, Outcome, errored, fail_closed, failed, passed


@fail_closed
def process_user(a: Attempt) -> Outcome:
    info = a.observation
    if info.uid == 0:
        return failed(f"tritonserver pid {info.pid} runs as root (uid 0)", severity="high", **a.evidence())
    return passed(f"tritonserver pid {info.pid} runs as uid {info.uid}", **a.evidence())


@fail_closed
def not_writable(attempts: Sequence[Attempt], what: str) -> Outcome:
    """Every directory tree (and its parents) is not writable by the server's user."""
    if not attempts:
        return errored(f"{what}: no directory was checked")
    obs = [a.observation for a in attempts]
    writable = [w for o in obs for w in o.writable]
    truncated = [o.path for o in obs if o.truncated]
    evidence = {"directories": [a.evidence() for a in attempts]}
    if writable:
        return failed(f"{what} writable by the server's user (uid {obs[0].uid}): {writable[0]}"
                      + (f" (+{len(writable) - 1} more)" if len(writable) > 1 else ""), severity="high", **evidence)
    if truncated:
        return errored(f"{what}: tree too large to check completely: {', '.join(truncated)}", **evidence)
    return passed(f"{what} not writable by uid {obs[0].uid}: " + ", ".join(o.path for o in obs), **evidence)


@fail_closed
def environment_secrets(a: Attempt) -> Outcome:
    env = a.observation
    if env.secrets:
        return failed(f"secret in the environment of pid {env.pid}: {env.secrets[0]}"
                      + (f" (+{len(env.secrets) - 1} more)" if len(env.secrets) > 1 else ""), severity="high", **a.evidence())
    return passed(f"no secret-looking variable among {len(env.names)} in the environment of pid {env.pid}", **a.evidence())
