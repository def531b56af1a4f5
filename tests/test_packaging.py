"""The package installs every sub-package of the source tree."""

import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_source_package_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "paee").rglob("__init__.py")
    } | {"paee_export", "paee_bench"}
    assert found == listed, f"add to / remove from pyproject packages: {sorted(found ^ listed)}"


def test_export_is_importable_under_its_distinct_name():
    import paee_export  # noqa: F401  (the folder export/ must not be importable as `export`)


def test_benchmarks_are_importable_under_their_distinct_name():
    import paee_bench.cli  # noqa: F401  (the folder benchmarks/ is installed as `paee_bench`)
