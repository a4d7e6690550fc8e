"""The CLI's last resort (issue 25): an exception nothing expected is a bug in nimwarden: one line on the
terminal naming the file that holds the traceback, exit status 70 (not one of the audit's 0-3), never a
bare traceback — and the traceback file is redacted like every artifact."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from nimwarden import cli

ROOT = Path(__file__).resolve().parents[2]


def test_an_unexpected_exception_is_one_line_naming_the_traceback_file_and_exit_70(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # TMPDIR is read again

    def broken(args):
        raise KeyError("token=nvapi-abcdefghijklmnopqrstuvwxyz0123456789")

    monkeypatch.setattr(cli, "cmd_catalog", broken)
    assert cli.main(["catalog"]) == cli.EXIT_BUG == 70
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "a bug in nimwarden" in lines[0] and "Traceback" not in err, err
    written = Path(re.search(r"traceback: (\S+\.txt)", lines[0]).group(1))
    assert written.parent == tmp_path and "Traceback (most recent call last)" in written.read_text()
    assert "in broken" in written.read_text()
    assert "abcdefghijklmnopqrstuvwxyz" not in err + written.read_text()  # redacted, on the terminal and in the file


def test_the_exit_status_is_documented():
    for doc in ("README.md", "docs/architecture.md"):
        assert re.search(r"\| 70 \|.*bug in nimwarden|`70`.*bug in nimwarden", (ROOT / doc).read_text()), doc


def test_a_program_run_prints_no_traceback(tmp_path):
    """Through the console entry point: a NUL byte in the profile's path (it used to be `ValueError:
    embedded null byte`) is one line, exit 2."""
    proc = subprocess.run([sys.executable, "-c", "import sys; from nimwarden.cli import main; sys.exit(main(['validate', '--target', 'a\\0b.yaml']))"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "NUL byte" in proc.stderr
