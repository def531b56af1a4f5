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


#: Fixed English text for `tiny_tokenizer`: every word the unit tests use is in it (so it stays whole).
TINY_TOKENIZER_TEXTS: tuple[str, ...] = (
    "Alice met Bob in Paris .",
    "Bob left Paris for New York in 1990 .",
    "Carol works for Acme Corporation , a company based in London .",
    "The river Thames flows through London and Oxford .",
    "Dave and Erin visited Berlin , the capital of Germany , in May 2001 .",
    "Acme Corporation was founded by Alice and Bob .",
    "The cat sat on the mat ; the dog did not .",
)


@pytest.fixture(scope="session")
def tiny_tokenizer():
    """A small BERT-style WordPiece tokenizer trained in code on `TINY_TOKENIZER_TEXTS` (no download)."""
    from paee.data.tokenizer import build_wordpiece_tokenizer

    return build_wordpiece_tokenizer(TINY_TOKENIZER_TEXTS, vocab_size=400)
