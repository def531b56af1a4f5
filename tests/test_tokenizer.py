"""Tokenizers trained in code and read from checkpoint directories; the TokenizerSpec; no torch."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import TINY_TOKENIZER_TEXTS
from tokenizers import Tokenizer, pre_tokenizers

from paee.data.errors import PaeeDataError
from paee.data.tokenizer import (
    CONTINUING_SUBWORD_PREFIX,
    DEFAULT_ALPHABET,
    WORDPIECE_SPECIAL_TOKENS,
    TokenizerSpec,
    build_wordpiece_tokenizer,
    load_tokenizer,
)


def test_special_tokens_and_template(tiny_tokenizer: Tokenizer) -> None:
    assert [tiny_tokenizer.id_to_token(i) for i in range(5)] == list(WORDPIECE_SPECIAL_TOKENS)
    assert tiny_tokenizer.token_to_id("[PAD]") == 0
    enc = tiny_tokenizer.encode(["Alice", "met", "Bob"], is_pretokenized=True)
    assert enc.tokens == ["[CLS]", "Alice", "met", "Bob", "[SEP]"]
    # special tokens in running text are matched whole, not split into pieces
    assert tiny_tokenizer.encode("[CLS] Bob [SEP]", add_special_tokens=False).tokens == ["[CLS]", "Bob", "[SEP]"]


def test_training_is_deterministic() -> None:
    texts = list(TINY_TOKENIZER_TEXTS) * 3 + ["Zoë wrote Ångström's notes about *starred* things"]
    first = build_wordpiece_tokenizer(texts, vocab_size=150)  # small: many merge ties to break
    for _ in range(3):
        assert build_wordpiece_tokenizer(texts, vocab_size=150).to_str() == first.to_str()


def test_alphabet_and_marker_always_in_vocab() -> None:
    tok = build_wordpiece_tokenizer(["Zoë saw the dog ."], vocab_size=100)
    vocab = tok.get_vocab()
    for c in DEFAULT_ALPHABET + "*ë":
        assert c in vocab and CONTINUING_SUBWORD_PREFIX + c in vocab, c
    # unseen ASCII words never collapse to [UNK], whatever the vocabulary size
    assert "[UNK]" not in tok.encode("Quixotic zebras jump 42x!").tokens


def test_no_unk_on_training_words(tiny_tokenizer: Tokenizer) -> None:
    for text in TINY_TOKENIZER_TEXTS:
        assert "[UNK]" not in tiny_tokenizer.encode(text).tokens


def test_lowercase_option() -> None:
    tok = build_wordpiece_tokenizer(["Alice met Bob"], vocab_size=200, lowercase=True)
    assert tok.encode("ALICE", add_special_tokens=False).tokens == ["alice"]


def test_spec_from_wordpiece(tiny_tokenizer: Tokenizer) -> None:
    spec = TokenizerSpec.from_tokenizer(tiny_tokenizer)
    cls, sep = tiny_tokenizer.token_to_id("[CLS]"), tiny_tokenizer.token_to_id("[SEP]")
    assert spec.pad_id == 0
    assert spec.start_tokens == (cls,)
    assert spec.end_tokens == (sep,)
    assert spec.suffix_tokens == (sep,)
    assert spec.marker_ids == (tiny_tokenizer.token_to_id("*"),)
    assert spec.marker_id == spec.marker_ids[0]
    assert TokenizerSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec
    with pytest.raises(PaeeDataError, match="invalid tokenizer spec"):
        TokenizerSpec.from_json({"pad_id": 0})


def test_spec_rejects_marker_outside_vocab(tiny_tokenizer: Tokenizer) -> None:
    with pytest.raises(PaeeDataError, match="not in the tokenizer's vocabulary"):
        TokenizerSpec.from_tokenizer(tiny_tokenizer, marker="\u4e2d")  # a CJK character never seen


def test_load_tokenizer_json(tiny_tokenizer: Tokenizer, tmp_path) -> None:
    tiny_tokenizer.save(str(tmp_path / "tokenizer.json"))
    loaded = load_tokenizer(tmp_path)
    text = TINY_TOKENIZER_TEXTS[2]
    assert loaded.encode(text).ids == tiny_tokenizer.encode(text).ids


def _write_vocab_txt(tok: Tokenizer, directory) -> None:
    by_id = sorted(tok.get_vocab().items(), key=lambda kv: kv[1])
    (directory / "vocab.txt").write_text("".join(t + "\n" for t, _ in by_id), encoding="utf-8")


def test_load_bert_vocab_txt(tiny_tokenizer: Tokenizer, tmp_path) -> None:
    _write_vocab_txt(tiny_tokenizer, tmp_path)
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False}))
    loaded = load_tokenizer(tmp_path)
    for text in TINY_TOKENIZER_TEXTS:
        assert loaded.encode(text).ids == tiny_tokenizer.encode(text).ids
    assert TokenizerSpec.from_tokenizer(loaded) == TokenizerSpec.from_tokenizer(tiny_tokenizer)


def test_load_bert_vocab_txt_lowercases_by_default(tmp_path) -> None:
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "*", "alice", "bob"]
    (tmp_path / "vocab.txt").write_text("\n".join(tokens) + "\n", encoding="utf-8")
    # transformers writes special tokens as AddedToken dicts in newer configs
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"cls_token": {"content": "[CLS]"}}))
    loaded = load_tokenizer(tmp_path)
    assert loaded.encode(["Alice", "BOB"], is_pretokenized=True).tokens == ["[CLS]", "alice", "bob", "[SEP]"]


def test_load_roberta_bpe(tmp_path) -> None:
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    merges = [("Ġ", "*"), ("Ġ", "B"), ("ĠB", "o"), ("ĠBo", "b")]
    tokens = specials + alphabet + [a + b for a, b in merges]
    (tmp_path / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}), encoding="utf-8")
    (tmp_path / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8")
    tok = load_tokenizer(tmp_path)
    ids = {t: i for i, t in enumerate(tokens)}
    assert tok.encode(["Bob", "*"], is_pretokenized=True).tokens == ["<s>", "ĠBob", "Ġ*", "</s>"]
    spec = TokenizerSpec.from_tokenizer(tok)
    assert spec.pad_id == ids["<pad>"]
    assert spec.start_tokens == (ids["<s>"],)
    assert spec.suffix_tokens == (ids["</s>"],)
    assert spec.end_tokens == (ids["</s>"], ids["</s>"])  # ATLOP's RoBERTa window end
    assert spec.marker_ids == (ids["Ġ*"],)


def test_load_tokenizer_errors(tmp_path) -> None:
    with pytest.raises(PaeeDataError, match="holds no tokenizer"):
        load_tokenizer(tmp_path)
    with pytest.raises(PaeeDataError, match="does not exist"):
        load_tokenizer(tmp_path / "missing")
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\nhello\n", encoding="utf-8")
    with pytest.raises(PaeeDataError, match="cls_token='\\[CLS\\]' is not in the vocabulary"):
        load_tokenizer(tmp_path)


def test_data_layer_never_imports_torch() -> None:
    code = (
        "import sys\n"
        "import paee.data.tokenizer, paee.data.featurizer, paee.data.decode\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "assert 'transformers' not in sys.modules, 'transformers was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
