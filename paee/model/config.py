"""Model configuration: `PaeeConfig` (encoder, featurizer, relations, head, loss weights).

One JSON-safe dataclass holds everything the model is built from; checkpoints store `PaeeConfig.to_dict()`
and rebuild the model with `PaeeConfig.from_dict(...)`. The sizes of the tensor contract are defined
once: N, M, S and the entity types by the featurizer configuration, R by the relation vocabulary, H and K
by the encoder; `PaeeConfig.dims` derives `paee.runtime.contract.ModelDims` from them, and the head,
the export and the serving side read that. The head's own hyperparameters (including the `variant`:
atlop baseline, ablations) live in `HeadConfig`, owned by `paee.model.head`.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from transformers import BertConfig

from paee.data.decode import DecodeConfig
from paee.data.featurizer import FeaturizerConfig
from paee.data.relations import RelationVocab
from paee.errors import ConfigError
from paee.model.head import HeadConfig
from paee.runtime.contract import DEFAULT_WINDOW, ModelDims

# BERT's [CLS] / [SEP] ids in the uncased/cased vocabularies; RoBERTa uses <s> = 0 and </s></s> = 2, 2.
BERT_START_TOKENS = (101,)
BERT_END_TOKENS = (102,)
# Hugging Face attention kernels the encoder may run; entity attention rows never need "eager" because
# EncoderGraph recomputes them from the last layer's Q and K (DESIGN.md sections 4 and 8).
ATTN_IMPLEMENTATIONS = ("sdpa", "eager")
#: Names of the relation losses; `paee.model.losses.RELATION_LOSSES` maps them to the functions.
RELATION_LOSS_NAMES = ("paper", "atlop")


@dataclass
class LossWeights:
    """Weights of eq. 12: total = at * L_rel + pot * L_pot + role * (L_sub + L_obj) / 2 [+ evidence * L_evi].

    The paper uses equal weights (alpha = beta = gamma = 1) and notes that tuning might help. ``evidence``
    weighs the optional evidence-guided attention loss (DREEAM; `paee.model.losses`), 0 = none (the paper's objective has no evidence term).
    """

    at: float = 1.0
    pot: float = 1.0
    role: float = 1.0
    evidence: float = 0.0
    #: Which relation loss ``at`` weighs: "paper" (eq. 9, balanced softmax) or "atlop" (ATLoss); see
    #: `paee.model.losses.RELATION_LOSSES`. Configurations saved before this field were trained with ATLoss.
    relation_loss: str = "paper"

    def __post_init__(self) -> None:
        for name in ("at", "pot", "role", "evidence"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value < 0:
                raise ConfigError(f"loss weight {name!r} must be a number >= 0, got {value!r}")
        if self.relation_loss not in RELATION_LOSS_NAMES:
            raise ConfigError(f"relation_loss must be one of {RELATION_LOSS_NAMES}, got {self.relation_loss!r}")


@dataclass
class PaeeConfig:
    """Everything PaeeModel is built from.

    Args:
        encoder: Hugging Face config dict of the BERT-family encoder (e.g. `BertConfig(...).to_dict()`);
            must contain `model_type`. With a pretrained directory, `build_model` reads that directory's
            own config instead and this dict records it.
        featurizer: the featurizer configuration: N, M, S, max length, entity types (the data's sizes).
        relations: the relation vocabulary (R classes, NA = 0; names travel to the served answers).
        window: encoder window in tokens; a longer document is read as k overlapping windows
            (`paee.model.long_input`), as long as the featurizer's ``max_length`` allows.
        window_stride: the most tokens between the starts of consecutive windows; None = a window's
            content length (window minus its special tokens: no gap, ATLOP's two windows up to that length).
        start_tokens: token ids that open a window (BERT [CLS]; RoBERTa <s>).
        end_tokens: token ids that close a window (BERT [SEP]; RoBERTa </s></s>).
        attn_implementation: the encoder's attention kernel, one of ATTN_IMPLEMENTATIONS.
        head: HeadConfig of the head (variant, channels, ...), owned by paee.model.head.
        loss: weights of the loss terms.
    """

    encoder: dict[str, Any]
    featurizer: FeaturizerConfig
    relations: RelationVocab
    window: int = DEFAULT_WINDOW
    window_stride: int | None = None
    start_tokens: list[int] = field(default_factory=lambda: list(BERT_START_TOKENS))
    end_tokens: list[int] = field(default_factory=lambda: list(BERT_END_TOKENS))
    attn_implementation: str = "sdpa"
    head: HeadConfig = field(default_factory=HeadConfig)
    loss: LossWeights = field(default_factory=LossWeights)

    def __post_init__(self) -> None:
        if not isinstance(self.encoder, dict) or "model_type" not in self.encoder:
            raise ConfigError(
                "encoder must be a Hugging Face config dict with a 'model_type' key "
                f"(e.g. BertConfig(...).to_dict()), got {type(self.encoder).__name__} "
                f"with keys {sorted(self.encoder)[:8] if isinstance(self.encoder, dict) else None}"
            )
        # stored in its JSON form (e.g. id2label's int keys become strings, as in a config.json) so
        # that a checkpoint's config compares equal to the one it was saved from
        try:
            self.encoder = json.loads(json.dumps(self.encoder))
        except TypeError as err:
            raise ConfigError(f"encoder config is not JSON-serialisable: {err}") from err
        if isinstance(self.featurizer, dict):
            self.featurizer = FeaturizerConfig.from_json(self.featurizer)
        if self.featurizer.truncate:  # a per-call choice, never a model's: configurations saved with it drop it
            self.featurizer = dataclasses.replace(self.featurizer, truncate=False)
        if isinstance(self.relations, dict):
            self.relations = RelationVocab.from_json(self.relations)
        if isinstance(self.loss, dict):  # a saved configuration without relation_loss was trained with ATLoss
            self.loss = LossWeights(**{"relation_loss": "atlop", **self.loss})
        if isinstance(self.head, dict):
            self.head = HeadConfig.from_dict(self.head)
        if self.relations.num_classes < 2:
            raise ConfigError(f"the relation vocabulary ({self.relations.num_classes} classes) must hold NA and >= 1 relation")
        if self.featurizer.max_entities < 2:
            raise ConfigError(f"max_entities ({self.featurizer.max_entities}) must be >= 2 to hold a pair")
        self.start_tokens = [int(t) for t in self.start_tokens]
        self.end_tokens = [int(t) for t in self.end_tokens]
        if not self.start_tokens or not self.end_tokens:
            raise ConfigError(f"start_tokens ({self.start_tokens}) and end_tokens ({self.end_tokens}) must be non-empty")
        if self.window <= len(self.start_tokens) + len(self.end_tokens):
            raise ConfigError(
                f"window ({self.window}) must exceed len(start_tokens) + len(end_tokens) "
                f"({len(self.start_tokens)} + {len(self.end_tokens)})"
            )
        max_positions = self.encoder.get("max_position_embeddings")
        if max_positions is not None and max_positions < self.window:
            raise ConfigError(f"window ({self.window}) exceeds the encoder's max_position_embeddings ({max_positions})")
        most = self.window - len(self.start_tokens) - len(self.end_tokens)
        if self.window_stride is not None and not 2 <= self.window_stride <= most:
            raise ConfigError(f"window_stride ({self.window_stride}) must be in 2..{most} (the window's content "
                              "length: a larger stride would leave tokens no window reads)")
        if self.attn_implementation not in ATTN_IMPLEMENTATIONS:
            raise ConfigError(f"attn_implementation {self.attn_implementation!r} is not one of {ATTN_IMPLEMENTATIONS}")
        self.head.check_sizes(self.dims)

    @property
    def max_length(self) -> int:
        """Longest document (wordpieces) the model is set to read: the featurizer's limit (not the encoder's)."""
        return self.featurizer.max_length

    @property
    def dims(self) -> ModelDims:
        """The sizes of the tensor contract for this model (the one place they are derived)."""
        return ModelDims(
            max_entities=self.featurizer.max_entities,
            max_mentions=self.featurizer.max_mentions,
            max_sentences=self.featurizer.max_sentences,
            hidden_size=int(self.encoder["hidden_size"]),
            num_heads=int(self.encoder["num_attention_heads"]),
            num_relations=self.relations.num_classes,
            num_entity_types=self.featurizer.num_entity_types,
            window=self.window,
            max_length=self.max_length,
        )

    def decode_config(self, top_k: int | None = None, evidence_threshold: float | None = None) -> DecodeConfig:
        """How this model's logits become triples: gated at lambda when it was trained with ``gate_pairs``; evidence
        at the configuration's threshold unless ``evidence_threshold`` is given."""
        return DecodeConfig(gate_threshold=self.head.ppp_threshold if self.head.gate_pairs else None, top_k=top_k,
                            evidence_threshold=self.head.evidence_threshold if evidence_threshold is None else evidence_threshold)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (nested configurations become dicts); inverse of `from_dict`."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data.update(
            featurizer=self.featurizer.to_json(), relations=self.relations.to_json(),
            head=self.head.to_dict(), loss=dataclasses.asdict(self.loss),
        )
        return json.loads(json.dumps(data))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PaeeConfig":
        """Rebuild from `to_dict()` output; unknown keys are an error (a checkpoint from another version)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown PaeeConfig keys {unknown}; known keys are {sorted(known)}")
        return cls(**data)  # __post_init__ turns the nested dicts into their dataclasses


def tiny_bert_config(
    vocab_size: int,
    hidden_size: int = 32,
    num_hidden_layers: int = 2,
    num_attention_heads: int = 4,
    intermediate_size: int = 37,
    max_position_embeddings: int = DEFAULT_WINDOW,
    dropout: float = 0.1,
) -> dict[str, Any]:
    """A small random-weight BERT config dict for tests and demos.

    The odd intermediate size (37) makes mixed-up dimensions fail loudly instead of broadcasting.
    ``dropout`` sets BERT's hidden and attention dropout (0.1 is BERT's own value).
    """
    if hidden_size % num_attention_heads:
        raise ConfigError(
            f"hidden_size ({hidden_size}) is not a multiple of num_attention_heads ({num_attention_heads})"
        )
    return BertConfig(
        vocab_size=vocab_size, hidden_size=hidden_size, num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads, intermediate_size=intermediate_size,
        max_position_embeddings=max_position_embeddings, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout,
    ).to_dict()
