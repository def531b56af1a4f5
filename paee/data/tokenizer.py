"""Tokenizers for the featurizer: trained in code, or read from a local Hugging Face checkpoint.

The data layer runs inside Triton's python backend, so it uses the `tokenizers` library directly
(never transformers, never torch) and never downloads anything:

* `build_wordpiece_tokenizer` trains a small BERT-style WordPiece tokenizer from texts (tests, the
  synthetic demo, experiments on real text without a checkpoint).
* `load_tokenizer` reads a checkpoint directory: ``tokenizer.json``, else BERT's ``vocab.txt``, else
  RoBERTa's ``vocab.json`` + ``merges.txt``.
* `TokenizerSpec` records the token ids the rest of the package needs (padding, the special tokens
  around a sequence, the entity marker) in a JSON-serialisable form that travels with checkpoints
  and exported models.
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

from paee.data.errors import PaeeDataError

PAD_TOKEN = "[PAD]"
UNK_TOKEN = "[UNK]"
CLS_TOKEN = "[CLS]"
SEP_TOKEN = "[SEP]"
MASK_TOKEN = "[MASK]"
#: Special tokens of the trained WordPiece tokenizer, in id order ([PAD] = 0 as in BERT).
WORDPIECE_SPECIAL_TOKENS: tuple[str, ...] = (PAD_TOKEN, UNK_TOKEN, CLS_TOKEN, SEP_TOKEN, MASK_TOKEN)
#: BERT's prefix for word-continuation pieces.
CONTINUING_SUBWORD_PREFIX = "##"
#: Words longer than this become one [UNK] (BERT's value).
MAX_INPUT_CHARS_PER_WORD = 100
#: The ATLOP entity marker: one such word before each mention start and after each mention end.
DEFAULT_MARKER = "*"
#: Characters always in the trained vocabulary (as a word start and as a continuation), so that
#: ordinary English text never maps a whole word to [UNK] because of one unseen character.
DEFAULT_ALPHABET: str = string.ascii_letters + string.digits + string.punctuation

#: Unicode private-use blocks (BMP, planes 15 and 16): stand-ins for continuation characters in training.
_PRIVATE_USE_RANGES = ((0xE000, 0xF8FF), (0xF0000, 0xFFFFD), (0x100000, 0x10FFFD))

#: Pad token names tried, in order, when a tokenizer has no padding configured.
_PAD_TOKEN_NAMES = (PAD_TOKEN, "<pad>", "<|pad|>")

# File names of a Hugging Face checkpoint directory.
TOKENIZER_JSON = "tokenizer.json"
BERT_VOCAB = "vocab.txt"
BPE_VOCAB = "vocab.json"
BPE_MERGES = "merges.txt"
TOKENIZER_CONFIG = "tokenizer_config.json"
SPECIAL_TOKENS_MAP = "special_tokens_map.json"


# --- training in code -------------------------------------------------------------------------


def build_wordpiece_tokenizer(
    texts: Iterable[str],
    vocab_size: int = 8000,
    lowercase: bool = False,
    min_frequency: int = 1,
    initial_alphabet: str = DEFAULT_ALPHABET,
) -> Tokenizer:
    """Train a BERT-style WordPiece tokenizer on ``texts`` (deterministic for the same inputs).

    BERT normalizer and pre-tokenizer, special tokens ``[PAD]=0 [UNK] [CLS] [SEP] [MASK]``,
    post-processor ``[CLS] $A [SEP]`` (pairs: ``[CLS] $A [SEP] $B [SEP]``). Every character of
    ``initial_alphabet``, of the texts and the entity marker ``*`` is in the vocabulary both as a
    word start and as a ``##`` continuation, so no word of the training texts becomes [UNK].
    """
    if vocab_size <= len(WORDPIECE_SPECIAL_TOKENS):
        raise PaeeDataError(f"vocab_size={vocab_size} leaves no room beside the special tokens")
    # strip_accents=None follows `lowercase`, as in BERT's uncased/cased checkpoints.
    normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=lowercase
    )
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    words_per_text = [
        [w for w, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text))] for text in texts
    ]
    chars = {c for words in words_per_text for w in words for c in w}
    chars.update(normalizer.normalize_str(initial_alphabet + DEFAULT_MARKER))
    chars = {c for c in chars if not c.isspace()}

    # Why not WordPieceTrainer(continuing_subword_prefix="##") directly: it gives "##c" pieces ids in
    # hash-map order, and merge ties are broken by piece id, so two runs on the same texts learn
    # different vocabularies. Instead each continuation character is spelled as a private-use
    # stand-in, so every initial piece comes from the (sorted) alphabet, and "##" is restored after.
    to_cont = _continuation_stand_ins(chars)
    from_cont = {v: k for k, v in to_cont.items()}
    table = str.maketrans(to_cont)
    encoded = (" ".join(w[0] + w[1:].translate(table) for w in words) for words in words_per_text)

    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(WORDPIECE_SPECIAL_TOKENS),
        initial_alphabet=sorted(chars | set(to_cont.values())),
        continuing_subword_prefix="",
        show_progress=False,
    )
    raw = Tokenizer(models.WordPiece(unk_token=UNK_TOKEN))
    raw.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    raw.train_from_iterator(encoded, trainer=trainer)

    vocab: dict[str, int] = {}
    for piece, _ in sorted(raw.get_vocab(with_added_tokens=False).items(), key=lambda kv: kv[1]):
        if piece not in WORDPIECE_SPECIAL_TOKENS and piece[0] in from_cont:
            piece = CONTINUING_SUBWORD_PREFIX + "".join(from_cont[c] for c in piece)
        else:
            piece = piece[0] + "".join(from_cont.get(c, c) for c in piece[1:])
        vocab.setdefault(piece, len(vocab))

    tokenizer = Tokenizer(
        models.WordPiece(vocab, unk_token=UNK_TOKEN, max_input_chars_per_word=MAX_INPUT_CHARS_PER_WORD)
    )
    tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre_tokenizer
    tokenizer.add_special_tokens(list(WORDPIECE_SPECIAL_TOKENS))
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{CLS_TOKEN} $A {SEP_TOKEN}",
        pair=f"{CLS_TOKEN} $A {SEP_TOKEN} $B:1 {SEP_TOKEN}:1",
        special_tokens=[(CLS_TOKEN, vocab[CLS_TOKEN]), (SEP_TOKEN, vocab[SEP_TOKEN])],
    )
    tokenizer.decoder = decoders.WordPiece(prefix=CONTINUING_SUBWORD_PREFIX)
    return tokenizer


def _continuation_stand_ins(chars: set[str]) -> dict[str, str]:
    """A private-use character for each character in ``chars`` (sorted, skipping any used in the text)."""
    candidates = (
        chr(cp)
        for lo, hi in _PRIVATE_USE_RANGES
        for cp in range(lo, hi + 1)
        if chr(cp) not in chars
    )
    stand_ins = dict(zip(sorted(chars), candidates))
    if len(stand_ins) < len(chars):
        raise PaeeDataError(f"the texts use {len(chars)} distinct characters, too many to train a WordPiece vocabulary")
    return stand_ins


# --- reading a checkpoint directory -------------------------------------------------------------


def load_tokenizer(directory: str | Path) -> Tokenizer:
    """The tokenizer of a local Hugging Face checkpoint directory (never downloads).

    Reads ``tokenizer.json`` if present; else ``vocab.txt`` as a BERT WordPiece tokenizer (honouring
    ``do_lower_case`` of ``tokenizer_config.json``, default True as in transformers); else
    ``vocab.json`` + ``merges.txt`` as a RoBERTa byte-level BPE tokenizer (``<s> $A </s>``).
    """
    path = Path(directory)
    if not path.is_dir():
        raise PaeeDataError(f"tokenizer directory {path} does not exist or is not a directory")
    if (path / TOKENIZER_JSON).is_file():
        try:
            return Tokenizer.from_file(str(path / TOKENIZER_JSON))
        except Exception as e:  # tokenizers raises plain Exception on malformed files
            raise PaeeDataError(f"cannot read {path / TOKENIZER_JSON}: {e}") from e
    config = _read_tokenizer_config(path)
    if (path / BERT_VOCAB).is_file():
        return _bert_from_vocab(path / BERT_VOCAB, config)
    if (path / BPE_VOCAB).is_file() and (path / BPE_MERGES).is_file():
        return _roberta_from_bpe(path / BPE_VOCAB, path / BPE_MERGES, config)
    raise PaeeDataError(
        f"{path} holds no tokenizer: expected {TOKENIZER_JSON}, {BERT_VOCAB} (BERT WordPiece) "
        f"or {BPE_VOCAB} + {BPE_MERGES} (RoBERTa byte-level BPE)"
    )


def _read_tokenizer_config(path: Path) -> dict[str, Any]:
    """tokenizer_config.json over special_tokens_map.json; special tokens as plain strings."""
    config: dict[str, Any] = {}
    for name in (SPECIAL_TOKENS_MAP, TOKENIZER_CONFIG):  # later files win
        file = path / name
        if not file.is_file():
            continue
        try:
            obj = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise PaeeDataError(f"cannot read {file}: {e}") from e
        if isinstance(obj, dict):
            config.update(obj)
    # transformers writes special tokens either as strings or as AddedToken dicts {"content": ...}
    return {k: (v["content"] if isinstance(v, dict) and "content" in v else v) for k, v in config.items()}


def _special(
    config: Mapping[str, Any], key: str, default: str, vocab: Mapping[str, int], file: Path
) -> tuple[str, int]:
    token = config.get(key) or default
    if token not in vocab:
        raise PaeeDataError(f"{file}: special token {key}={token!r} is not in the vocabulary")
    return token, vocab[token]


def _bert_from_vocab(vocab_file: Path, config: Mapping[str, Any]) -> Tokenizer:
    try:
        lines = vocab_file.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise PaeeDataError(f"cannot read {vocab_file}: {e}") from e
    vocab: dict[str, int] = {}
    for line in lines:
        token = line.rstrip("\n")
        vocab.setdefault(token, len(vocab))  # BERT's loader: id = line number, first wins
    unk = _special(config, "unk_token", UNK_TOKEN, vocab, vocab_file)
    cls = _special(config, "cls_token", CLS_TOKEN, vocab, vocab_file)
    sep = _special(config, "sep_token", SEP_TOKEN, vocab, vocab_file)
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token=unk[0], max_input_chars_per_word=MAX_INPUT_CHARS_PER_WORD))
    lowercase = bool(config.get("do_lower_case", True))
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True,
        handle_chinese_chars=bool(config.get("tokenize_chinese_chars", True)),
        strip_accents=config.get("strip_accents"),
        lowercase=lowercase,
    )
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.BertProcessing(sep, cls)  # positional: the keywords differ across versions
    tokenizer.decoder = decoders.WordPiece(prefix=CONTINUING_SUBWORD_PREFIX)
    tokenizer.add_special_tokens(
        [t for t in (PAD_TOKEN, unk[0], cls[0], sep[0], MASK_TOKEN, config.get("pad_token"), config.get("mask_token"))
         if isinstance(t, str) and t in vocab]
    )
    return tokenizer


def _roberta_from_bpe(vocab_file: Path, merges_file: Path, config: Mapping[str, Any]) -> Tokenizer:
    try:
        vocab, merges = models.BPE.read_file(str(vocab_file), str(merges_file))
    except Exception as e:  # tokenizers raises plain Exception on malformed files
        raise PaeeDataError(f"cannot read {vocab_file} / {merges_file}: {e}") from e
    bos = _special(config, "cls_token", "<s>", vocab, vocab_file)
    eos = _special(config, "sep_token", "</s>", vocab, vocab_file)
    # The featurizer feeds pre-split words; a prefix space makes each word encode as it does in
    # running text ("Ġword"), which is how transformers handles is_split_into_words for RoBERTa.
    add_prefix_space = bool(config.get("add_prefix_space", True))
    tokenizer = Tokenizer(models.BPE(vocab, merges))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.RobertaProcessing(
        eos, bos, trim_offsets=True, add_prefix_space=add_prefix_space
    )
    tokenizer.add_special_tokens(
        [t for t in ("<s>", "</s>", "<pad>", "<unk>", "<mask>", bos[0], eos[0], config.get("pad_token"))
         if isinstance(t, str) and t in vocab]
    )
    return tokenizer


# --- the ids the rest of the package needs ------------------------------------------------------


@dataclass(frozen=True)
class TokenizerSpec:
    """Token ids derived from a tokenizer; JSON-serialisable (stored with checkpoints and exports).

    Attributes:
        pad_id: id used to pad ``input_ids``.
        start_tokens: special tokens the post-processor puts before a sequence (``[CLS]``; ``<s>``).
        end_tokens: special tokens that close the first window of a long document in ATLOP's
            two-window merge: the separator between the two parts of a pair (``[SEP]``; RoBERTa
            ``</s></s>``).
        suffix_tokens: special tokens the post-processor puts after a single sequence
            (``[SEP]``; ``</s>``); the featurizer ends every document with them.
        marker: the entity marker word.
        marker_ids: the marker word's token ids; ``marker_ids[0]`` sits at every ``mention_pos``.
    """

    pad_id: int
    start_tokens: tuple[int, ...]
    end_tokens: tuple[int, ...]
    suffix_tokens: tuple[int, ...]
    marker: str
    marker_ids: tuple[int, ...]

    @property
    def marker_id(self) -> int:
        """Token id found at a mention's start-marker position."""
        return self.marker_ids[0]

    @classmethod
    def from_tokenizer(cls, tokenizer: Tokenizer, marker: str = DEFAULT_MARKER) -> TokenizerSpec:
        """Read the ids from the tokenizer's post-processor, padding and vocabulary."""
        single = tokenizer.encode([marker], is_pretokenized=True)
        seq = single.sequence_ids
        content = [i for i, s in enumerate(seq) if s is not None]
        if not content:
            raise PaeeDataError(f"the tokenizer encodes the entity marker {marker!r} to no token")
        start = tuple(single.ids[: content[0]])
        suffix = tuple(single.ids[content[-1] + 1 :])
        pair = tokenizer.encode([marker], [marker], is_pretokenized=True)
        pseq = pair.sequence_ids
        last_a = max(i for i, s in enumerate(pseq) if s == 0)
        first_b = min((i for i, s in enumerate(pseq) if s == 1), default=len(pseq))
        end = tuple(pair.ids[last_a + 1 : first_b]) or suffix

        marker_ids = tuple(tokenizer.encode([marker], is_pretokenized=True, add_special_tokens=False).ids)
        unk = getattr(tokenizer.model, "unk_token", None)
        unk_id = tokenizer.token_to_id(unk) if unk else None
        if unk_id is not None and unk_id in marker_ids:
            raise PaeeDataError(
                f"the entity marker {marker!r} is not in the tokenizer's vocabulary (encodes to {unk!r})"
            )
        return cls(
            pad_id=_pad_id(tokenizer),
            start_tokens=start,
            end_tokens=end,
            suffix_tokens=suffix,
            marker=marker,
            marker_ids=marker_ids,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "pad_id": self.pad_id,
            "start_tokens": list(self.start_tokens),
            "end_tokens": list(self.end_tokens),
            "suffix_tokens": list(self.suffix_tokens),
            "marker": self.marker,
            "marker_ids": list(self.marker_ids),
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> TokenizerSpec:
        try:
            return cls(
                pad_id=int(obj["pad_id"]),
                start_tokens=tuple(int(i) for i in obj["start_tokens"]),
                end_tokens=tuple(int(i) for i in obj["end_tokens"]),
                suffix_tokens=tuple(int(i) for i in obj["suffix_tokens"]),
                marker=str(obj["marker"]),
                marker_ids=tuple(int(i) for i in obj["marker_ids"]),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise PaeeDataError(f"invalid tokenizer spec {dict(obj)!r}: {e}") from e


def _pad_id(tokenizer: Tokenizer) -> int:
    if tokenizer.padding is not None:
        return int(tokenizer.padding["pad_id"])
    for name in _PAD_TOKEN_NAMES:
        token_id = tokenizer.token_to_id(name)
        if token_id is not None:
            return token_id
    raise PaeeDataError(f"the tokenizer has no padding configured and none of the pad tokens {_PAD_TOKEN_NAMES}")
