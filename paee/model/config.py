"""Model configuration: `PaeeConfig` (encoder, long-input windows, sizes, head, loss weights).

One JSON-safe dataclass holds every hyperparameter that the model is built from; checkpoints store
`PaeeConfig.to_dict()` and rebuild the model with `PaeeConfig.from_dict(...)`. The head's own
hyperparameters (including the `variant`: atlop baseline, ablations) live in `HeadConfig`, owned by
`paee.model.head`, and are nested here as a dataclass that serialises to a plain dict.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the runtime import is deferred, see `_head_config_class`
    from paee.model.head import HeadConfig

# The encoder's window (BERT-family position limit) and the longest document the two-window scheme
# covers (ATLOP's process_long_input: two overlapping windows of `window` tokens).
DEFAULT_WINDOW = 512
LONG_INPUT_WINDOWS = 2
# DocRED / Re-DocRED maximum entity count per document (DESIGN.md section 4).
DEFAULT_MAX_ENTITIES = 42
# BERT's [CLS] / [SEP] ids in the uncased/cased vocabularies; RoBERTa uses <s> = 0 and </s></s> = 2, 2.
BERT_START_TOKENS = (101,)
BERT_END_TOKENS = (102,)
# Hugging Face attention kernels the encoder may run; entity attention rows never need "eager" because
# EncoderGraph recomputes them from the last layer's Q and K (DESIGN.md sections 4 and 8).
ATTN_IMPLEMENTATIONS = ("sdpa", "eager")


def _head_config_class() -> type:
    """The `HeadConfig` class, imported on use.

    Why deferred: `paee.model.head` builds torch modules and is owned by the head; reading or writing a
    checkpoint's configuration (and the encoder/loss code and their tests) should not depend on the
    head module being importable, and the head may import constants from this module.
    """
    from paee.model.head import HeadConfig

    return HeadConfig


def _default_head_config() -> "HeadConfig":
    return _head_config_class()()


@dataclass
class LossWeights:
    """Weights of eq. 12: total = at * L_AT + pot * L_pot + role * (L_sub + L_obj) / 2 [+ evidence * L_evi].

    The paper uses equal weights (alpha = beta = gamma = 1) and notes that tuning might help. ``evidence``
    weighs the optional evidence-guided attention loss (DREEAM; `paee.model.losses`), 0 = the paper's loss.
    """

    at: float = 1.0
    pot: float = 1.0
    role: float = 1.0
    evidence: float = 0.0

    def __post_init__(self) -> None:
        for name in ("at", "pot", "role", "evidence"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"loss weight {name!r} must be a number >= 0, got {value!r}")


@dataclass
class PaeeConfig:
    """Every hyperparameter PaeeModel is built from.

    Args:
        encoder: Hugging Face config dict of the BERT-family encoder (e.g. `BertConfig(...).to_dict()`);
            must contain `model_type`. With a pretrained directory, `build_model` reads that directory's
            own config instead and this dict records it.
        num_relations: R, relation classes including the NA / threshold class 0.
        num_entity_types: entity type ids including the padding type 0.
        max_entities: N, entity slots per document (padded); an export-time constant.
        window: encoder window in tokens; longer documents (up to LONG_INPUT_WINDOWS * window) are
            encoded as two overlapping windows.
        start_tokens: token ids that open a window (BERT [CLS]; RoBERTa <s>).
        end_tokens: token ids that close a window (BERT [SEP]; RoBERTa </s></s>).
        attn_implementation: the encoder's attention kernel, one of ATTN_IMPLEMENTATIONS.
        head: HeadConfig of the head (variant, channels, ...), owned by paee.model.head.
        loss: weights of the loss terms.
    """

    encoder: dict[str, Any]
    num_relations: int
    num_entity_types: int
    max_entities: int = DEFAULT_MAX_ENTITIES
    window: int = DEFAULT_WINDOW
    start_tokens: list[int] = field(default_factory=lambda: list(BERT_START_TOKENS))
    end_tokens: list[int] = field(default_factory=lambda: list(BERT_END_TOKENS))
    attn_implementation: str = "sdpa"
    head: "HeadConfig" = field(default_factory=_default_head_config)
    loss: LossWeights = field(default_factory=LossWeights)

    def __post_init__(self) -> None:
        if not isinstance(self.encoder, dict) or "model_type" not in self.encoder:
            raise ValueError(
                "encoder must be a Hugging Face config dict with a 'model_type' key "
                f"(e.g. BertConfig(...).to_dict()), got {type(self.encoder).__name__} "
                f"with keys {sorted(self.encoder)[:8] if isinstance(self.encoder, dict) else None}"
            )
        # stored in its JSON form (e.g. id2label's int keys become strings, as in a config.json) so
        # that a checkpoint's config compares equal to the one it was saved from
        try:
            self.encoder = json.loads(json.dumps(self.encoder))
        except TypeError as err:
            raise ValueError(f"encoder config is not JSON-serialisable: {err}") from err
        if self.num_relations < 2:
            raise ValueError(f"num_relations ({self.num_relations}) must count NA (class 0) and >= 1 relation")
        if self.num_entity_types < 2:
            raise ValueError(
                f"num_entity_types ({self.num_entity_types}) must count the padding type 0 and >= 1 real type"
            )
        if self.max_entities < 2:
            raise ValueError(f"max_entities ({self.max_entities}) must be >= 2 to hold a pair")
        self.start_tokens = [int(t) for t in self.start_tokens]
        self.end_tokens = [int(t) for t in self.end_tokens]
        if not self.start_tokens or not self.end_tokens:
            raise ValueError(
                f"start_tokens ({self.start_tokens}) and end_tokens ({self.end_tokens}) must be non-empty"
            )
        if self.window <= len(self.start_tokens) + len(self.end_tokens):
            raise ValueError(
                f"window ({self.window}) must exceed len(start_tokens) + len(end_tokens) "
                f"({len(self.start_tokens)} + {len(self.end_tokens)})"
            )
        max_positions = self.encoder.get("max_position_embeddings")
        if max_positions is not None and max_positions < self.window:
            raise ValueError(
                f"window ({self.window}) exceeds the encoder's max_position_embeddings ({max_positions})"
            )
        if self.attn_implementation not in ATTN_IMPLEMENTATIONS:
            raise ValueError(
                f"attn_implementation {self.attn_implementation!r} is not one of {ATTN_IMPLEMENTATIONS}"
            )
        if isinstance(self.loss, dict):
            self.loss = LossWeights(**self.loss)
        if isinstance(self.head, dict):
            self.head = _head_config_class().from_dict(self.head)
        self._check_head_agrees()

    def _check_head_agrees(self) -> None:
        """The head may repeat some sizes; a disagreement is a configuration mistake, not a choice."""
        shared = {
            "num_relations": self.num_relations,
            "num_entity_types": self.num_entity_types,
            "max_entities": self.max_entities,
            "hidden_size": self.encoder.get("hidden_size"),
            "num_heads": self.encoder.get("num_attention_heads"),
        }
        for name, ours in shared.items():
            theirs = getattr(self.head, name, None)
            if ours is not None and theirs is not None and theirs != ours:
                raise ValueError(f"head.{name} ({theirs}) disagrees with the model's {name} ({ours})")

    @property
    def max_length(self) -> int:
        """Longest document (tokens) the encoder accepts: two windows."""
        return LONG_INPUT_WINDOWS * self.window

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (nested dataclasses become dicts); inverse of `from_dict`."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PaeeConfig":
        """Rebuild from `to_dict()` output; unknown keys are an error (a checkpoint from another version)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown PaeeConfig keys {unknown}; known keys are {sorted(known)}")
        return cls(**data)  # __post_init__ turns the nested `head` and `loss` dicts into dataclasses


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
    from transformers import BertConfig  # deferred: keeps `import paee.model.config` light

    if hidden_size % num_attention_heads:
        raise ValueError(
            f"hidden_size ({hidden_size}) is not a multiple of num_attention_heads ({num_attention_heads})"
        )
    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads,
        intermediate_size=intermediate_size,
        max_position_embeddings=max_position_embeddings,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    ).to_dict()
