"""Assembling a new model: encoder source (a local Hugging Face directory, or ``tiny`` built in code),
tokenizer, featurizer configuration and the `PaeeConfig` that ties them to the data.

Nothing is downloaded: a directory is read from disk, and ``tiny`` trains a WordPiece tokenizer on the
training documents and builds a small random BERT (tests, demo, CI).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer
from transformers import AutoConfig

from paee.data.featurizer import FeaturizerConfig
from paee.data.relations import RelationVocab, read_relation_names
from paee.data.schema import Document
from paee.data.tokenizer import TokenizerSpec, build_wordpiece_tokenizer, load_tokenizer
from paee.errors import PaeeUserError
from paee.model.config import LossWeights, PaeeConfig, tiny_bert_config
from paee.model.head import HeadConfig

#: The `--encoder` value that builds a small random BERT and a WordPiece tokenizer in code.
TINY_ENCODER = "tiny"
#: Learning rates for a random encoder trained from scratch (fine-tuning a pretrained one wants ~100x less).
TINY_LR_ENCODER = 1e-3
TINY_LR_HEAD = 2e-3
#: Fine-tuning a pretrained encoder (ATLOP's and DocuNet's BERT-base settings).
PRETRAINED_LR_ENCODER = 5e-5
PRETRAINED_LR_HEAD = 1e-4


def default_learning_rates(encoder: str) -> tuple[float, float]:
    """(encoder, head) learning rates that suit ``--encoder``: from scratch for ``tiny``, else fine-tuning."""
    return (TINY_LR_ENCODER, TINY_LR_HEAD) if encoder == TINY_ENCODER else (PRETRAINED_LR_ENCODER, PRETRAINED_LR_HEAD)


@dataclass
class TinyEncoderSize:
    """Sizes of the ``tiny`` encoder and of the head that suits it (seconds per epoch on a CPU)."""

    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int = 131  # odd on purpose: mixed-up dimensions fail instead of broadcasting
    vocab_size: int = 4000
    # No dropout: a small model trained for minutes underfits, and dropout only slows it down.
    dropout: float = 0.0
    head: dict[str, Any] = field(default_factory=lambda: {
        "pair_dim": 64, "map_channels": 32, "map_out_channels": 64, "ppp_hidden": 64, "ppp_embed_dim": 16,
        "eer_dim": 64, "eer_heads": 4, "eer_ffn_dim": 128, "eer_dropout": 0.0, "emb_size": 128, "block_size": 16,
    })


@dataclass
class EncoderSource:
    """Where the encoder comes from: its HF config dict, its tokenizer, and its weights directory (None = random)."""

    hf_config: dict[str, Any]
    tokenizer: Tokenizer
    directory: Path | None
    head_defaults: dict[str, Any]


def prepare_encoder(encoder: str, train_docs: Sequence[Document], tiny: TinyEncoderSize | None = None) -> EncoderSource:
    """``tiny`` or a local directory holding a Hugging Face BERT/RoBERTa/SciBERT checkpoint."""
    if encoder == TINY_ENCODER:
        tiny = tiny or TinyEncoderSize()
        texts = (" ".join(" ".join(s) for s in doc.sents) for doc in train_docs)
        tokenizer = build_wordpiece_tokenizer(texts, vocab_size=tiny.vocab_size)
        hf_config = tiny_bert_config(
            vocab_size=tokenizer.get_vocab_size(), hidden_size=tiny.hidden_size, num_hidden_layers=tiny.num_layers,
            num_attention_heads=tiny.num_heads, intermediate_size=tiny.intermediate_size, dropout=tiny.dropout,
        )
        return EncoderSource(hf_config, tokenizer, None, dict(tiny.head))
    directory = Path(encoder)
    if not directory.is_dir():
        raise PaeeUserError(
            f"--encoder {encoder!r} is neither '{TINY_ENCODER}' nor a local directory with a Hugging Face "
            "checkpoint (config.json, weights, tokenizer files); nothing is downloaded"
        )
    hf_config = AutoConfig.from_pretrained(directory, local_files_only=True).to_dict()
    return EncoderSource(hf_config, load_tokenizer(directory), directory, {})


def make_model_config(
    source: EncoderSource,
    relations: RelationVocab,
    featurizer_config: FeaturizerConfig,
    head_overrides: Mapping[str, Any] | None = None,
    loss: LossWeights | None = None,
) -> PaeeConfig:
    """The `PaeeConfig` of a new model: the encoder's, the data's sizes and relations, head hyperparameters."""
    spec = TokenizerSpec.from_tokenizer(source.tokenizer, featurizer_config.marker)
    return PaeeConfig(
        encoder=source.hf_config,
        featurizer=featurizer_config,
        relations=relations,
        start_tokens=list(spec.start_tokens),
        end_tokens=list(spec.end_tokens),
        head=HeadConfig(**{**source.head_defaults, **dict(head_overrides or {})}),
        loss=loss if loss is not None else LossWeights(),
    )


def relations_for(train_docs: Sequence[Document], train_path: Path | None, rel2id: Path | None,
                  rel_info: Path | None) -> RelationVocab:
    """Relation vocabulary: ``--rel2id`` if given, else ``rel2id.json`` beside the training file, else the
    relations of the training labels (sorted). Names from ``--rel-info`` or ``rel_info.json`` beside it."""
    if rel2id is None and train_path is not None and (train_path.parent / "rel2id.json").is_file():
        rel2id = train_path.parent / "rel2id.json"
    if rel_info is None and train_path is not None and (train_path.parent / "rel_info.json").is_file():
        rel_info = train_path.parent / "rel_info.json"
    if rel2id is not None:
        return RelationVocab.from_files(rel2id, rel_info)
    names = read_relation_names(rel_info) if rel_info else None
    return RelationVocab.from_ids((f.relation for d in train_docs for f in d.facts), names)
