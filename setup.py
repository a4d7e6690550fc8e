"""Build hook (the project's metadata is in pyproject.toml): the compliance suites stay at suites/ in the
repository, and the wheel carries them as nimwarden/suites/, where an installed nimwarden finds them
(``nimwarden.suites_dir``). ``pip install .``, ``pip wheel .`` and ``python -m build`` all run it."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithSuites(build_py):
    def run(self) -> None:
        super().run()
        source = Path(__file__).resolve().parent / "suites"
        target = Path(self.build_lib) / "nimwarden" / "suites"
        self.mkpath(str(target))
        for suite in sorted(source.glob("test_*.py")):
            self.copy_file(str(suite), str(target / suite.name))


setup(cmdclass={"build_py": BuildWithSuites})
