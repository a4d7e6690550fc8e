"""The catalog is data with stable IDs: each entry is implemented by exactly one suite test, and vice versa."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import pytest

from nimwarden.catalog import FAMILIES, load_catalog

SUITES = Path(__file__).resolve().parents[2] / "suites"


def suite_tests() -> list[tuple[str, str, list[str]]]:
    """(file, test function, control IDs named by its markers) for every test in suites/."""
    found = []
    for path in sorted(SUITES.glob("test_*.py")):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                ids = []
                for deco in node.decorator_list:
                    if (
                        isinstance(deco, ast.Call)
                        and isinstance(deco.func, ast.Attribute)
                        and deco.func.attr == "control"
                        and deco.args
                        and isinstance(deco.args[0], ast.Constant)
                    ):
                        ids.append(deco.args[0].value)
                found.append((path.name, node.name, ids))
    return found


def test_catalog_loads_and_is_well_formed():
    catalog = load_catalog()
    assert len(catalog) >= 13
    for control in catalog.values():
        assert control.family in FAMILIES
        assert control.sources and all(len(s) > 10 for s in control.sources)
        assert control.rationale and control.remediation


def test_every_suite_test_names_exactly_one_control():
    catalog = load_catalog()
    for file, name, ids in suite_tests():
        assert len(ids) == 1, f"{file}::{name} names {ids or 'no'} control (exactly one required)"
        assert ids[0] in catalog, f"{file}::{name} names {ids[0]}, which is not in the catalog"


def test_every_control_is_implemented_by_exactly_one_test():
    counts = Counter(i for _, _, ids in suite_tests() for i in ids)
    for control in load_catalog().values():
        if control.retired:
            assert counts[control.id] == 0, f"retired control {control.id} still has a test"
            continue
        assert counts[control.id] == 1, f"{control.id} is implemented by {counts[control.id]} tests"


def test_broken_catalog_entries_are_reported(tmp_path, monkeypatch):
    from nimwarden import catalog as cat
    from nimwarden.errors import ConfigError

    (tmp_path / "triton_api" / "controls").mkdir(parents=True)
    (tmp_path / "triton_api" / "controls" / "TRITON-X-001.yaml").write_text("id: TRITON-X-001\ntitle: t\nfamily: nowhere\nseverity: high\nrationale: r\nremediation: r\nsources: [s]\n")
    monkeypatch.setattr(cat, "CATALOG_DIR", tmp_path)
    cat.load_catalog.cache_clear()
    try:
        with pytest.raises(ConfigError, match="family: unknown family"):
            cat.load_catalog()
    finally:
        monkeypatch.undo()
        cat.load_catalog.cache_clear()
