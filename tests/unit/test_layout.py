"""The layout shows the architecture (docs/architecture.md): one folder and one suite per family, the
registry knows every family, applicability is declared once per control, suites hold no logic, and
nothing in the repository cites a document outside it."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest

from nimwarden import families
from nimwarden.catalog import FAMILIES, load_catalog, package_of

ROOT = Path(__file__).resolve().parents[2]
FAMILY_DIR = ROOT / "nimwarden" / "families"


def _suite_controls(path: Path) -> list[str]:
    ids = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef):
            for deco in node.decorator_list:
                if isinstance(deco, ast.Call) and getattr(deco.func, "attr", "") == "control":
                    ids.append(deco.args[0].value)
    return ids


def test_every_family_is_one_folder_with_one_suite():
    assert sorted(families.registry()) == sorted(FAMILIES)
    suites = {p.name for p in (ROOT / "suites").glob("test_*.py")}
    assert suites == {f"test_{package_of(f)}.py" for f in FAMILIES}, "exactly one suite per family, named after it"
    for family in FAMILIES:
        folder = FAMILY_DIR / package_of(family)
        assert (folder / "controls").is_dir(), f"{family}: controls/ missing"
        assert (folder / "__init__.py").read_text().lstrip().startswith('"""'), f"{family}: its __init__ says what the family holds"


def test_a_controls_yaml_and_test_sit_with_its_family():
    for control in load_catalog().values():
        assert (FAMILY_DIR / package_of(control.family) / "controls" / f"{control.id}.yaml").is_file()
    for family in FAMILIES:
        suite = ROOT / "suites" / f"test_{package_of(family)}.py"
        for cid in _suite_controls(suite):
            assert load_catalog()[cid].family == family, f"{suite.name} tests {cid}, a control of another family"


def test_applicability_is_declared_for_the_familys_own_controls():
    catalog = load_catalog()
    for name, family in families.registry().items():
        for cid, predicate in family.applies.items():
            assert cid in catalog and catalog[cid].family == name, f"{name} declares applicability for {cid}"
            assert callable(predicate)


LOGIC_IN_SUITES = re.compile(r"\b(not_applicable|errored|incomplete|passed|failed)\(|except\b|\bfor .* in .*:$|^\s*if\b", re.M)


@pytest.mark.parametrize("suite", sorted(p.name for p in (ROOT / "suites").glob("test_*.py")))
def test_suites_hold_no_logic(suite):
    """Suites parametrize, ask a probe, call a judge, record: no verdicts of their own, no retries."""
    text = (ROOT / "suites" / suite).read_text()
    found = [m.group(0) for m in LOGIC_IN_SUITES.finditer(text)]
    assert not found, f"{suite} decides things a family should: {found}"


def _tracked() -> list[Path]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return [ROOT / f for f in out if not f.startswith("tests/fixtures/")]


def test_no_file_cites_a_document_outside_the_repository():
    outside = re.compile(r"ARCHITECTURE\.md|STYLE\.md|FACTS\.md|\.\./shared/")
    hits = []
    for path in _tracked():
        if path.suffix not in (".py", ".md", ".yaml", ".yml", ".toml", ".ini", ".json", "") or not path.is_file():
            continue
        if path == Path(__file__).resolve():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        hits += [f"{path.relative_to(ROOT)}:{text[:m.start()].count(chr(10)) + 1}" for m in outside.finditer(text)]
    assert not hits, f"cite docs/ instead: {hits}"
    assert (ROOT / "docs" / "architecture.md").is_file()


def test_no_module_over_400_lines_without_saying_why():
    long = []
    for path in sorted((ROOT / "nimwarden").rglob("*.py")) + sorted((ROOT / "suites").glob("*.py")):
        lines = path.read_text().splitlines()
        if len(lines) > 400 and "longer than 400 lines" not in "\n".join(lines[:15]):
            long.append(f"{path.relative_to(ROOT)} ({len(lines)} lines)")
    assert not long, long
