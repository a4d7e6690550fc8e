"""A pytest plugin for the harness's own tests: break a run on purpose at a chosen point.

NIMWARDEN_TEST_KILL_PID + NIMWARDEN_TEST_KILL_AFTER=N: SIGKILL that process after N tests.
NIMWARDEN_TEST_SIGINT_AFTER=N: send SIGINT to this pytest process after N tests (as Ctrl-C does).
NIMWARDEN_TEST_BREAK_INTERRUPT_REPORT=1: pytest's report of the interrupt raises, as its terminal reporter
does when the interrupted frame has no line number (``tb_lineno`` None: 'unsupported operand type(s) for -').
"""

import os
import signal

import pytest

_seen = {"n": 0}


def pytest_runtest_logfinish(nodeid, location):
    _seen["n"] += 1
    n = _seen["n"]
    kill_after = int(os.environ.get("NIMWARDEN_TEST_KILL_AFTER", "0") or 0)
    if kill_after and n == kill_after:
        pid = int(os.environ["NIMWARDEN_TEST_KILL_PID"])
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    sigint_after = int(os.environ.get("NIMWARDEN_TEST_SIGINT_AFTER", "0") or 0)
    if sigint_after and n == sigint_after:
        os.kill(os.getpid(), signal.SIGINT)


@pytest.hookimpl(tryfirst=True)  # before pytest's terminal reporter, which then never records the interrupt: as when its own call raises
def pytest_keyboard_interrupt(excinfo):
    if os.environ.get("NIMWARDEN_TEST_BREAK_INTERRUPT_REPORT"):
        raise TypeError("unsupported operand type(s) for -: 'NoneType' and 'int'")
