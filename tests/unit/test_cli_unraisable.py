"""What Python can only ignore is one line on the terminal, never its default traceback.

A SIGTERM at the wrong moment of an audit through pytest interrupts allure-pytest's setup wrapper; its generator,
closed at exit, raises, and Python printed "Exception ignored in: <generator …>" with a traceback after the
audit's own last line (found by tests/reliability/test_interrupts.py under CI). Here the same two shapes, made on
purpose in a real `nimwarden` program run: a generator that raises as it is closed, and a __del__ that raises.
"""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT

PROGRAM = '''
import sys
from nimwarden import cli

class Late:
    def __del__(self):
        raise ValueError("closed twice")

def wrapper():  # as pluggy runs an old-style hookwrapper whose teardown fails
    try:
        yield
    except GeneratorExit:
        raise AttributeError("'NoneType' object has no attribute 'name'")

sys.argv = ["nimwarden", "catalog", "--family", "tls"]
held = [Late()]
g = wrapper()
next(g)
code = cli.main()
del held[:]
del g
sys.exit(code)
'''


def test_an_exception_python_ignores_is_one_line_after_the_run():
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    proc = subprocess.run([sys.executable, "-c", PROGRAM], cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0 and "TLS-PROTOCOL-001" in proc.stdout
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr
    assert proc.stderr.splitlines() == [
        "nimwarden: ignored, in Late.__del__ (Python cannot raise it): ValueError: closed twice",
        "nimwarden: ignored, in wrapper (Python cannot raise it): AttributeError: 'NoneType' object has no attribute 'name'",
    ]
