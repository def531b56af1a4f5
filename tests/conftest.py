"""Shared fixtures. Real data lives outside the repository in ../shared/data and is never copied in."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def _shared(relative: str) -> Path:
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"real data not present: {path} (see ../shared/data/SOURCES.md)")
    return path


@pytest.fixture(scope="session")
def redocred_dev_path() -> Path:
    """Re-DocRED dev: 500 labelled documents."""
    return _shared("redocred/dev_revised.json")


@pytest.fixture(scope="session")
def docred_test_path() -> Path:
    """DocRED test: 1,000 unlabelled documents."""
    return _shared("docred/test_unlabeled.json")


@pytest.fixture(scope="session")
def rel2id_path() -> Path:
    return _shared("meta/rel2id.json")


@pytest.fixture(scope="session")
def rel_info_path() -> Path:
    return _shared("meta/rel_info.json")
