"""HeadGraph: everything after the encoder (paper section 2.2-2.3 and eq. 8), exported as one graph.

``HeadGraph(config, dims)(token_emb, entity_emb, entity_attn, entity_type, entity_mask, sent_span, sent_mask,
same_sent, pair_index, pair_mask) -> HeadOutput(logits, pair_logit, pair_prob, evidence_dist, subj_logits,
obj_logits)``

`HeadConfig` holds the head's own hyperparameters; the sizes it is built for (N, S, H, K, R, entity types)
come from `paee.runtime.contract.ModelDims`, derived once from the model's configuration.

Pipeline (paee variant; DESIGN.md 5.2-5.7):
  pair features V of the n x n block (real pairs and diagonal; localized context pooling + W1 +
  pos/type embeddings)                                                        [paee.model.pair_map]
  -> sliding-window fill of the N x N map -> W2 (D -> 3 channels) -> TNet / U-Net -> Y [B,N,N,256]
  -> the real pairs: Y gathered at pair_index [B,P,256]; Potential Pair Prediction (3x3 average pool of
     the map, then an MLP per pair) -> Y_pair = [Y; pair_prob > lambda] [B,P,257]
  Entity-Enhanced Representation: Transformer over [entities; sentences] -> He, Sub-Obj layer
  -> e_sub = [He; sigmoid(F_sub)], e_obj = [He; sigmoid(F_obj)], gathered per pair's subject / object
  -> z_s = tanh(W_s e_sub[s] + P_s Y_pair[s,o]), z_o = tanh(W_o e_obj[o] + P_o Y_pair[s,o])
  -> grouped bilinear (ATLOP) -> logits [B,P,R]
  Evidence: each pair's a(s,o) (the attention that pools c(s,o)) summed per sentence and normalised over the
  sentences -> evidence_dist [B,P,S]; the decoder keeps the sentences above a threshold (DREEAM's reading).

The map and TNet are fixed N x N tensor ops (N from the configuration); everything that works pair by pair
runs on the document's real pairs (``pair_index``, padded per batch), so its cost follows the document.
Variants and ablations are rows of one table (`VARIANTS`), not forks of the code; ``atlop`` and ``wo_par``
have no map and compute the localized context of the real pairs only. No loop over documents or pairs, no
data-depending shape but the pair axis, no ``.item()``; every gather works on index tensors.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from paee.model.grouped_bilinear import GroupedBilinear
from paee.model.pair_map import (
    ATTENTION_NORM_EPS,
    NUM_SAME_SENT_VALUES,
    PairFeatures,
    block_rows,
    entity_counts,
    fill_map,
    gather_entities,
    gather_pairs,
    pairs_attention,
)
from paee.data.decode import DEFAULT_EVIDENCE_THRESHOLD
from paee.model.tnet import TNet, tnet_grid_size
from paee.model.unet import UNet
from paee.errors import ConfigError
from paee.runtime.contract import ModelDims

#: Logit reported as ``pair_logit`` when Potential Pair Prediction is off: sigmoid(1e4) == 1.0 exactly in
#: fp32, consistent with ``pair_prob = 1`` (every pair is a candidate, so gating is a no-op), and finite.
PPP_OFF_LOGIT = 1e4

#: Fill value for tokens outside a sentence before the max-pool; fp16-safe (fp16 min is -65504), far
#: below any hidden state of a LayerNorm-ed encoder.
MASKED_MAX_FILL = -1e4

#: Entity/sentence masks are float 0/1; compare against the midpoint rather than testing equality.
MASK_THRESHOLD = 0.5

BACKBONES = ("tnet", "unet")


@dataclass(frozen=True)
class VariantFlags:
    """What one model variant switches on. ``pair_input`` is the pair representation fed to eq. 8."""

    use_par: bool  # pair map: fill + W2 + TNet/U-Net backbone
    use_ppp: bool  # Potential Pair Prediction (needs use_par)
    use_eer: bool  # Entity-Enhanced Representation (RE-encoder + cross matching)
    fill: str  # "sliding" | "zero" (only read when use_par)
    pair_input: str  # "map": Y_pair; "pair_features": V; "context": c(s,o) (ATLOP)


#: The one table of variants (paper Table 5 ablations plus the ATLOP baseline).
VARIANTS: dict[str, VariantFlags] = {
    "paee": VariantFlags(use_par=True, use_ppp=True, use_eer=True, fill="sliding", pair_input="map"),
    "atlop": VariantFlags(use_par=False, use_ppp=False, use_eer=False, fill="sliding", pair_input="context"),
    "wo_par": VariantFlags(
        use_par=False, use_ppp=False, use_eer=True, fill="sliding", pair_input="pair_features"
    ),
    "wo_eer": VariantFlags(use_par=True, use_ppp=True, use_eer=False, fill="sliding", pair_input="map"),
    "wo_sw": VariantFlags(use_par=True, use_ppp=True, use_eer=True, fill="zero", pair_input="map"),
    "wo_ppp": VariantFlags(use_par=True, use_ppp=False, use_eer=True, fill="sliding", pair_input="map"),
}


@dataclass
class HeadConfig:
    """Hyperparameters of `HeadGraph` (its sizes come from `ModelDims`). Every field is JSON-safe."""

    # --- variant ---
    variant: str = "paee"  # one of VARIANTS: paee, atlop, wo_par, wo_eer, wo_sw, wo_ppp
    backbone: str = "tnet"  # "tnet" (paper) or "unet" (DocuNet's, ablation)
    # --- pair map (eq. 3-4) ---
    pair_dim: int = 256  # D: W1 output; the map costs N*N*D floats per document
    map_in_channels: int = 3  # W2 output channels, input of the backbone (DocuNet's choice)
    map_out_channels: int = 256  # backbone output channels D' (DocuNet's choice)
    map_channels: int = 64  # inner width of TNet / U-Net convolutions
    tnet_patch_size: int = 6  # TNet cell side P; N=42, P=6 -> 7 x 7 grid, no padding
    tnet_top_k: int = 8  # TNet cells refined at full resolution (constant k; ~16% of 49 cells)
    tnet_location_hidden: int = 32  # hidden width of the location module's 1x1 convs
    unet_depth: int = 2  # U-Net down/up steps; N is padded to a multiple of 2**depth internally
    # --- Potential Pair Prediction (eq. 5) ---
    ppp_threshold: float = 0.3  # lambda: indicator pair_prob > lambda concatenated to Y
    ppp_pool: int = 3  # side of the average pool around each pair (odd: centred)
    ppp_hidden: int = 128  # hidden width of the binary classifier
    ppp_embed_dim: int = 32  # size of its same-sentence and type embeddings
    gate_pairs: bool = False  # at prediction, pairs under lambda are predicted NA (done by the decoder)
    # a triple's evidence: the sentences whose share of a(s,o) exceeds this (done by the decoder; DREEAM's 0.2)
    evidence_threshold: float = DEFAULT_EVIDENCE_THRESHOLD
    # --- Entity-Enhanced Representation (eq. 6-7) ---
    eer_layers: int = 2  # Transformer layers of the RE-encoder
    eer_heads: int = 4  # its attention heads (must divide eer_dim)
    eer_dim: int = 256  # its d_model; H is projected down when different (cheaper sentence max-pool)
    eer_ffn_dim: int = 1024  # its feed-forward width
    eer_dropout: float = 0.1  # its dropout
    # --- classifier (eq. 8) ---
    emb_size: int = 768  # z_s / z_o size (ATLOP: 768 for BERT-base)
    block_size: int = 64  # grouped bilinear block (ATLOP); must divide emb_size

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ConfigError(f"variant must be one of {sorted(VARIANTS)}, got {self.variant!r}")
        if self.backbone not in BACKBONES:
            raise ConfigError(f"backbone must be one of {list(BACKBONES)}, got {self.backbone!r}")
        positive = (
            "pair_dim", "map_in_channels", "map_out_channels", "map_channels", "tnet_patch_size", "tnet_top_k",
            "tnet_location_hidden", "unet_depth", "ppp_pool", "ppp_hidden", "ppp_embed_dim",
            "eer_layers", "eer_heads", "eer_dim", "eer_ffn_dim", "emb_size", "block_size",
        )  # fmt: skip
        bad = {name: getattr(self, name) for name in positive if getattr(self, name) < 1}
        if bad:
            raise ConfigError(f"these HeadConfig fields must be >= 1: {bad}")
        if self.emb_size % self.block_size != 0:
            raise ConfigError(
                f"emb_size ({self.emb_size}) is not a multiple of block_size ({self.block_size})"
            )
        if self.eer_dim % self.eer_heads != 0:
            raise ConfigError(f"eer_dim ({self.eer_dim}) is not a multiple of eer_heads ({self.eer_heads})")
        if not 0.0 < self.ppp_threshold < 1.0:
            raise ConfigError(f"ppp_threshold must be in (0, 1), got {self.ppp_threshold}")
        if self.ppp_pool % 2 != 1:
            raise ConfigError(f"ppp_pool must be odd (a window centred on the pair), got {self.ppp_pool}")
        if not 0.0 <= self.eer_dropout < 1.0:
            raise ConfigError(f"eer_dropout must be in [0, 1), got {self.eer_dropout}")
        if not 0.0 <= self.evidence_threshold < 1.0:
            raise ConfigError(f"evidence_threshold must be in [0, 1), got {self.evidence_threshold}")

    def check_sizes(self, dims: ModelDims) -> None:
        """Raise ValueError where these hyperparameters cannot serve a model of ``dims`` (TNet's grid)."""
        if not (self.flags.use_par and self.backbone == "tnet"):
            return
        N = dims.max_entities
        if self.tnet_patch_size > N:
            raise ConfigError(f"tnet_patch_size ({self.tnet_patch_size}) exceeds max_entities ({N})")
        grid = tnet_grid_size(N, self.tnet_patch_size)
        if self.tnet_top_k > grid**2:
            raise ConfigError(
                f"tnet_top_k ({self.tnet_top_k}) exceeds the {grid**2} cells of the TNet grid "
                f"({grid} x {grid} for max_entities {N}, patch {self.tnet_patch_size})"
            )

    @property
    def flags(self) -> VariantFlags:
        """What this variant switches on (its row of `VARIANTS`)."""
        return VARIANTS[self.variant]

    def entity_repr_dim(self, dims: ModelDims) -> int:
        """Size of e_sub / e_obj: [He; F] with EER, the encoder's entity embedding without."""
        return self.eer_dim + dims.num_relations if self.flags.use_eer else dims.hidden_size

    def pair_repr_dim(self, dims: ModelDims) -> int:
        """Size of the pair representation fed to eq. 8 (Y_pair, V or c(s,o))."""
        sizes = {
            "map": self.map_out_channels + (1 if self.flags.use_ppp else 0),  # + the indicator channel
            "pair_features": self.pair_dim,
            "context": dims.hidden_size,
        }
        return sizes[self.flags.pair_input]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HeadConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown HeadConfig keys {unknown}; known: {sorted(known)}")
        return cls(**data)


class HeadOutput(NamedTuple):
    """Outputs of `HeadGraph` (names are the exported graph's output names)."""

    logits: torch.Tensor  # [B, P, R] relation logits of each pair, class 0 = adaptive threshold
    pair_logit: torch.Tensor  # [B, P] Potential Pair Prediction logit (PPP_OFF_LOGIT when off)
    pair_prob: torch.Tensor  # [B, P] sigmoid(pair_logit) (1 when PPP is off)
    evidence_dist: torch.Tensor  # [B, P, S] each sentence's share of a(s,o) (`evidence_distribution`)
    subj_logits: torch.Tensor  # [B, N, R] cross matching: entity is subject of class r (0 without EER)
    obj_logits: torch.Tensor  # [B, N, R] entity is object of class r (0 without EER)


def build_backbone(config: HeadConfig, dims: ModelDims) -> nn.Module:
    """The map backbone ``[B, map_in, N, N] -> [B, map_out, N, N]`` chosen by ``config.backbone``."""
    if config.backbone == "tnet":
        return TNet(
            config.map_in_channels,
            config.map_out_channels,
            size=dims.max_entities,
            channels=config.map_channels,
            patch_size=config.tnet_patch_size,
            top_k=config.tnet_top_k,
            location_hidden=config.tnet_location_hidden,
        )
    return UNet(config.map_in_channels, config.map_out_channels, config.map_channels, config.unet_depth)


class PotentialPairPredictor(nn.Module):
    """Eq. 5: average-pool Y around each pair, MLP over [pooled; pos emb; subj type emb; obj type emb]."""

    def __init__(self, config: HeadConfig, dims: ModelDims) -> None:
        super().__init__()
        embed = config.ppp_embed_dim
        self.pool = config.ppp_pool
        self.same_sent_emb = nn.Embedding(NUM_SAME_SENT_VALUES, embed)
        self.subj_type_emb = nn.Embedding(dims.num_entity_types, embed)
        self.obj_type_emb = nn.Embedding(dims.num_entity_types, embed)
        self.classifier = nn.Sequential(
            nn.Linear(config.map_out_channels + 3 * embed, config.ppp_hidden),
            nn.ReLU(),
            nn.Linear(config.ppp_hidden, 1),
        )

    def forward(
        self, y_map: torch.Tensor, entity_type: torch.Tensor, same_sent: torch.Tensor, pair_index: torch.Tensor
    ) -> torch.Tensor:
        """y_map: [B, C, N, N]; entity_type: [B, N]; same_sent: [B, N, N]; pair_index: [B, P, 2] -> pair_logit [B, P].

        The pool is a map operation (over every cell); the classifier runs on the listed pairs only.
        """
        # count_include_pad=False: border pairs average over their real neighbours only.
        pooled = F.avg_pool2d(y_map, self.pool, stride=1, padding=self.pool // 2, count_include_pad=False)
        pooled = gather_pairs(pooled.permute(0, 2, 3, 1), pair_index)  # [B, P, C]
        subj = self.subj_type_emb(entity_type.gather(1, pair_index[..., 0]))  # [B, P, e]
        obj = self.obj_type_emb(entity_type.gather(1, pair_index[..., 1]))  # [B, P, e]
        pair_same_sent = gather_pairs(same_sent.unsqueeze(-1), pair_index).squeeze(-1)  # [B, P]
        features = torch.cat([pooled, self.same_sent_emb(pair_same_sent), subj, obj], dim=-1)  # [B, P, C+3e]
        return self.classifier(features).squeeze(-1)  # [B, P]


def sentence_token_mask(sent_span: torch.Tensor, sent_mask: torch.Tensor, length: int) -> torch.Tensor:
    """True where token l lies in the span ``[start, end)`` of real sentence s: bool [B, S, L].

    sent_span: int64 [B, S, 2]; sent_mask: [B, S]; length: L, the token axis of the batch.
    """
    positions = torch.arange(length, device=sent_span.device, dtype=sent_span.dtype)  # [L]
    start = sent_span[..., 0:1]  # [B, S, 1]
    end = sent_span[..., 1:2]  # [B, S, 1]
    real = (sent_mask > MASK_THRESHOLD).unsqueeze(-1)  # [B, S, 1]
    return (positions >= start) & (positions < end) & real  # [B, S, L]


def sentence_attention(pair_attn: torch.Tensor, sent_span: torch.Tensor, sent_mask: torch.Tensor) -> torch.Tensor:
    """The mass of each pair's attention a(s,o) on each sentence's tokens: [B, P, S] (the evidence loss's and the
    evidence output's one source).

    pair_attn: [B, P, L] (`pairs_attention`, sums to 1 over tokens); sent_span: int64 [B, S, 2]; sent_mask: [B, S].
    Tokens outside every sentence ([CLS], [SEP]) hold the rest of the mass.
    """
    inside = sentence_token_mask(sent_span, sent_mask, pair_attn.shape[-1])  # [B, S, L]
    return torch.matmul(pair_attn, inside.to(pair_attn.dtype).transpose(1, 2))  # [B, P, S]


def evidence_distribution(sentence_attn: torch.Tensor) -> torch.Tensor:
    """Each sentence's share of the pair's attention on sentences: [B, P, S], summing to 1 over the real
    sentences (0 on padded ones), so that one threshold means the same in short and long documents."""
    total = sentence_attn.sum(dim=-1, keepdim=True)  # [B, P, 1]
    return sentence_attn / (total + ATTENTION_NORM_EPS)


def sentence_max_pool(tokens: torch.Tensor, sent_span: torch.Tensor, sent_mask: torch.Tensor) -> torch.Tensor:
    """Max over each sentence's token span ``[start, end)``: [B, S, d]; empty/padded sentences -> 0.

    tokens: [B, L, d]; sent_span: int64 [B, S, 2]; sent_mask: [B, S]. Materialises [B, S, L, d] (a
    masked max has no matmul form), which is why tokens are projected to eer_dim first.
    """
    inside = sentence_token_mask(sent_span, sent_mask, tokens.shape[1])  # [B, S, L]
    masked = torch.where(inside.unsqueeze(-1), tokens.unsqueeze(1), MASKED_MAX_FILL)  # [B, S, L, d]
    pooled = masked.amax(dim=2)  # [B, S, d]
    nonempty = inside.any(dim=-1, keepdim=True)  # [B, S, 1]
    return torch.where(nonempty, pooled, 0.0)  # [B, S, d]


class EntityEnhancer(nn.Module):
    """Eq. 6-7: RE-encoder over [entities; sentences], then the Sub-Obj (cross matching) layer."""

    def __init__(self, config: HeadConfig, dims: ModelDims) -> None:
        super().__init__()
        dim = config.eer_dim
        self.num_relations = dims.num_relations
        # One projection for entities and tokens: entity embeddings are pooled token states (same space).
        self.in_proj: nn.Module = (
            nn.Identity() if dim == dims.hidden_size else nn.Linear(dims.hidden_size, dim)
        )
        self.sent_pos_emb = nn.Embedding(dims.max_sentences, dim)
        layer = nn.TransformerEncoderLayer(
            dim, config.eer_heads, config.eer_ffn_dim, config.eer_dropout, batch_first=True
        )
        # enable_nested_tensor=False: the nested-tensor path is eval-only, untraceable, and drops rows.
        self.encoder = nn.TransformerEncoder(layer, config.eer_layers, enable_nested_tensor=False)
        self.sub_obj = nn.Linear(dim, 2 * dims.num_relations)

    def forward(
        self,
        token_emb: torch.Tensor,
        entity_emb: torch.Tensor,
        entity_mask: torch.Tensor,
        sent_span: torch.Tensor,
        sent_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> e_sub, e_obj [B, N, d+R]; subj_logits, obj_logits [B, N, R]."""
        num_ent = entity_emb.shape[1]
        num_sent = sent_span.shape[1]
        tokens = self.in_proj(token_emb)  # [B, L, d]
        sentences = sentence_max_pool(tokens, sent_span, sent_mask)  # [B, S, d]
        sentences = sentences + self.sent_pos_emb.weight[:num_sent]  # [B, S, d] + [S, d]
        sequence = torch.cat([self.in_proj(entity_emb), sentences], dim=1)  # [B, N+S, d]
        padding = torch.cat([entity_mask, sent_mask], dim=1) < MASK_THRESHOLD  # [B, N+S] True = ignore
        # Never mask key 0: an all-padding filler document would otherwise softmax over nothing (NaN).
        # Key 0 is a real entity whenever n >= 1, so real documents are unaffected.
        padding = torch.cat([torch.zeros_like(padding[:, :1]), padding[:, 1:]], dim=1)  # [B, N+S]
        states = self.encoder(sequence, src_key_padding_mask=padding)  # [B, N+S, d]
        entities = states[:, :num_ent]  # [B, N, d] He
        subj_logits, obj_logits = self.sub_obj(entities).split(self.num_relations, dim=-1)  # [B, N, R] x2
        # Probabilities (the paper's F, trained with BCE) rather than logits: bounded features for eq. 8.
        e_sub = torch.cat([entities, torch.sigmoid(subj_logits)], dim=-1)  # [B, N, d+R]
        e_obj = torch.cat([entities, torch.sigmoid(obj_logits)], dim=-1)  # [B, N, d+R]
        return e_sub, e_obj, subj_logits, obj_logits


class HeadGraph(nn.Module):
    """The relation head of PAEE (and of its variants): see the module docstring."""

    def __init__(self, config: HeadConfig, dims: ModelDims) -> None:
        super().__init__()
        config.check_sizes(dims)
        self.config = config
        self.dims = dims
        flags = config.flags
        # Sub-modules exist only when their variant uses them: checkpoints of a variant hold exactly its
        # parameters.
        self.pair_features = (
            PairFeatures(dims.hidden_size, config.pair_dim, dims.num_entity_types)
            if flags.pair_input != "context"
            else None
        )
        self.to_map = nn.Linear(config.pair_dim, config.map_in_channels) if flags.use_par else None  # W2
        self.backbone = build_backbone(config, dims) if flags.use_par else None
        self.ppp = PotentialPairPredictor(config, dims) if flags.use_ppp else None
        self.eer = EntityEnhancer(config, dims) if flags.use_eer else None
        self.classifier = GroupedBilinear(config.entity_repr_dim(dims), config.pair_repr_dim(dims), config.emb_size,
                                          config.block_size, dims.num_relations)

    def _check_shapes(
        self, token_emb: torch.Tensor, entity_attn: torch.Tensor, sent_span: torch.Tensor
    ) -> None:
        dims = self.dims
        num_ent, num_heads, hidden = entity_attn.shape[1], entity_attn.shape[2], token_emb.shape[-1]
        if num_ent != dims.max_entities:
            raise ValueError(f"entity axis is {num_ent}, the model's max_entities is {dims.max_entities}")
        if num_heads != dims.num_heads:
            raise ValueError(f"entity_attn has {num_heads} heads, the model's num_heads is {dims.num_heads}")
        if hidden != dims.hidden_size:
            raise ValueError(f"token_emb hidden size {hidden} != the model's hidden_size {dims.hidden_size}")
        if sent_span.shape[1] > dims.max_sentences:
            raise ValueError(
                f"{sent_span.shape[1]} sentence slots exceed the model's max_sentences ({dims.max_sentences})"
            )

    def forward(
        self,
        token_emb: torch.Tensor,  # [B, L, H]
        entity_emb: torch.Tensor,  # [B, N, H]
        entity_attn: torch.Tensor,  # [B, N, K, L]
        entity_type: torch.Tensor,  # int64 [B, N]
        entity_mask: torch.Tensor,  # f32 [B, N]
        sent_span: torch.Tensor,  # int64 [B, S, 2]
        sent_mask: torch.Tensor,  # f32 [B, S]
        same_sent: torch.Tensor,  # int64 [B, N, N]
        pair_index: torch.Tensor,  # int64 [B, P, 2]
        pair_mask: torch.Tensor,  # f32 [B, P]; padded pairs compute finite values that nothing reads
    ) -> HeadOutput:
        cfg, flags = self.config, self.config.flags
        self._check_shapes(token_emb, entity_attn, sent_span)
        # Outputs of switched-off parts: constants shaped from the inputs (dynamic batch and pairs).
        pair_prob = torch.ones_like(pair_mask, dtype=token_emb.dtype)  # [B, P]
        pair_logit = pair_prob * PPP_OFF_LOGIT  # [B, P]
        role_zeros = torch.zeros_like(entity_mask).unsqueeze(-1).expand(-1, -1, self.dims.num_relations)  # [B,N,R]
        subj_logits, obj_logits = role_zeros, role_zeros

        # --- a(s,o) once (ATLOP's pair attention): the localized context c(s,o) of eq. 3 and the evidence ---
        num_pairs = pair_index.shape[1]
        map_variant = self.pair_features is not None and self.backbone is not None and self.to_map is not None
        # the map reads the n x n block (real pairs, then the diagonal); the others the real pairs only
        rows = block_rows(pair_index, self.dims.max_entities) if map_variant else pair_index  # [B, P(+N), 2]
        pair_attn = pairs_attention(entity_attn, rows)  # [B, P(+N), L]
        context = torch.matmul(pair_attn, token_emb)  # [B, P(+N), H] c(s,o)
        evidence_dist = evidence_distribution(
            sentence_attention(pair_attn[:, :num_pairs], sent_span, sent_mask))  # [B, P, S]

        # --- pair representation (eq. 3-5): the map where the variant has one, then the real pairs ---
        if self.pair_features is None:  # ATLOP: c(s,o) itself, of the real pairs only
            pair_repr = context  # [B, P, H]
        elif self.backbone is None or self.to_map is None:  # w/o PAR: V of the real pairs only
            pair_repr = self.pair_features.pair_features(context, entity_type, same_sent, pair_index)  # [B, P, D]
        else:
            # V of the n x n block only (real pairs and diagonal as rows), then the fixed N x N map: the
            # fill and the backbone see every cell (the product card)
            block = self.pair_features.pair_features(context, entity_type, same_sent, rows)  # [B, P+N, D]
            filled = fill_map(block, entity_counts(entity_mask), num_pairs, flags.fill)  # [B, N, N, D]
            map_in = self.to_map(filled).permute(0, 3, 1, 2)  # [B, 3, N, N]
            y_map = self.backbone(map_in)  # [B, 256, N, N]
            pair_repr = gather_pairs(y_map.permute(0, 2, 3, 1), pair_index)  # [B, P, 256]
            if self.ppp is not None:
                pair_logit = self.ppp(y_map, entity_type, same_sent, pair_index)  # [B, P]
                pair_prob = torch.sigmoid(pair_logit)
                # Hard indicator, as in the paper; no gradient flows through the threshold.
                indicator = (pair_prob > cfg.ppp_threshold).to(pair_repr.dtype).unsqueeze(-1)  # [B, P, 1]
                pair_repr = torch.cat([pair_repr, indicator], dim=-1)  # [B, P, 257]

        # --- entity representation (eq. 6-7), then each pair's subject and object ---
        if self.eer is not None:
            e_sub, e_obj, subj_logits, obj_logits = self.eer(
                token_emb, entity_emb, entity_mask, sent_span, sent_mask
            )  # [B, N, d+R] x2, [B, N, R] x2
        else:
            e_sub = e_obj = entity_emb  # [B, N, H]
        e_sub = gather_entities(e_sub, pair_index[..., 0])  # [B, P, De]
        e_obj = gather_entities(e_obj, pair_index[..., 1])  # [B, P, De]

        logits = self.classifier(e_sub, e_obj, pair_repr, pair_mask)  # [B, P, R]
        return HeadOutput(logits, pair_logit, pair_prob, evidence_dist, subj_logits, obj_logits)
