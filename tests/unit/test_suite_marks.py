"""The stand-in for pytest the in-process runner imports the suites with (nimwarden.suite_marks): the same
marks as pytest records, every suite; pytest itself for anything else; an offline audit never imports pytest."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from nimwarden import suite_marks
from nimwarden.suite_marks import STAND_IN
from tests import corpus

ROOT = Path(__file__).resolve().parents[2]
SUITES = sorted((ROOT / "suites").glob("test_*.py"))


def _import(path: Path, name: str, as_pytest):
    saved = sys.modules["pytest"]
    sys.modules["pytest"] = as_pytest
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.modules["pytest"] = saved
    return module


def _marks(obj) -> list:
    marks = getattr(obj, "pytestmark", [])
    return [(m.name, m.args, m.kwargs) for m in (marks if isinstance(marks, list) else [marks])]


def _all_marks(module) -> dict:
    out = {"<module>": _marks(module)}
    for name, fn in vars(module).items():
        if name.startswith("test_") and callable(fn):
            out[name] = _marks(fn)
    return out


@pytest.mark.parametrize("path", SUITES, ids=[p.stem for p in SUITES])
def test_every_suite_gets_the_marks_pytest_gives_it(path):
    real = _import(path, f"_marks_real_{path.stem}", sys.modules["pytest"])
    stand_in = _import(path, f"_marks_stand_in_{path.stem}", STAND_IN)
    want, got = _all_marks(real), _all_marks(stand_in)
    assert got == want
    assert any(marks for name, marks in want.items() if name != "<module>")  # the suite has marked tests


def test_a_mark_decorator_behaves_as_pytests():
    mark = STAND_IN.mark

    @mark.slow
    @mark.control("A-1")
    def test_a():
        pass

    assert [(m.name, m.args) for m in test_a.pytestmark] == [("control", ("A-1",)), ("slow", ())]
    chained = mark.parametrize("x")([1, 2])  # arguments added call by call
    assert (chained.name, chained.args) == ("parametrize", ("x", [1, 2]))
    with_function_argument = mark.parametrize("f", [test_a])
    assert with_function_argument.args == ("f", [test_a])  # two arguments: not applied to the function
    assert mark.kinds("triton", "nim").args == ("triton", "nim")  # a module-level pytestmark reads the same

    class TestX:
        pass

    assert mark.kinds("nim")(TestX) is TestX and [m.name for m in TestX.pytestmark] == ["kinds"]
    assert mark.parametrize("x", [1], ids=["one"]).kwargs == {"ids": ["one"]}


def test_anything_else_is_pytests_own():
    assert STAND_IN.skip is pytest.skip and STAND_IN.param is pytest.param


def test_pytest_imported_already_is_used_as_it_is():
    with suite_marks.without_pytest():
        assert sys.modules["pytest"] is pytest


def test_an_offline_audit_never_imports_pytest(tmp_path):
    profile = corpus.one_pod_profile(tmp_path)
    code = ("import sys\nfrom nimwarden import cli\n"
            f"status = cli.main(['audit', '--target', {str(profile)!r}, '--reports-dir', {str(tmp_path / 'r')!r}])\n"
            "print('STATUS', status, 'pytest' in sys.modules, sorted(m for m in sys.modules if m.startswith('suites.')))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("STATUS")), proc.stdout[-300:] + proc.stderr[-2000:])
    assert line.split()[1] in ("0", "1", "3") and line.split()[2] == "False", line  # judged, without pytest
    assert "suites.test_pod_security" in line  # a suite was imported, and pytest was not
