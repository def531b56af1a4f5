"""TNet over the N x N pair map (paper eq. 4): multi-scale hard attention producing a dense map.

TNet (Papadopoulos et al. 2021, "Hard-Attention for Scalable Image Classification") processes an image
coarse-to-fine: features of a downscaled input, a *location module* that scores the cells of a grid laid
over the input, and a fixed number of the best cells re-processed at higher resolution. The original
classifies a whole image and trains the location module with REINFORCE; PAEE needs one feature vector
per entity pair, so ours (DESIGN.md 5.4) is dense and differentiable:

1. stem: conv block at full resolution (fine features) on the padded map ``[B, C, Np, Np]``;
2. coarse level: avg-pool x2, conv block, nearest upsample back: context everywhere;
3. location module: per grid cell (patch P x P, grid G x G, ``G = Np / P``) the mean coarse feature and
   the global mean feature, two 1x1 convs, softmax over the G*G cells;
4. top-k cells (constant k) gathered from the fine features, processed by a conv block, weighted by
   ``G*G * p(cell)`` (1 for a uniform location distribution; the weight is how the location module gets
   gradients) and scattered back into their place (the top-k indices are distinct: plain scatter);
5. fuse [fine; coarse; refined] with a conv block, 1x1 conv to the output channels.

Every shape is a constant for a given N (TopK with constant k, Gather, ScatterElements without
reduction, reshapes instead of unfold/fold), so the graph exports to ONNX / TensorRT with static shapes.
N is padded internally (zeros, bottom/right) to ``Np``, the smallest multiple of the patch size that is
also even (for the x2 pooling), and cropped back. N = 42 with P = 6 needs no padding: G = 7.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from paee.model.unet import ConvBlock, padded_size

#: Scale factor of the coarse level (TNet's first level sees a downscaled input).
COARSE_FACTOR = 2

#: Logit handicap per rank step when choosing the top-k cells. Sliding filling makes a map periodic, so
#: cells often score exactly alike; without a tie-breaker TopK picks among them by implementation detail,
#: and PyTorch and ONNX Runtime/TensorRT (whose scores differ by ~1e-6) would refine different cells.
#: 1e-3 is far above that noise and far below real score differences of a trained location module.
TIE_BREAK_STEP = 1e-3


def cell_ranks(grid: int) -> torch.Tensor:
    """Tie-break rank of each cell (row-major, [G*G]): cells nearer the top-left corner rank first.

    Ordered by the square ring ``max(row, col)``, then ``row + col``, then index: on ties the cells that
    overlap a document's real n x n block (top-left, the only part used downstream) are refined.
    """
    cells = [(max(r, c), r + c, r * grid + c) for r in range(grid) for c in range(grid)]
    order = sorted(range(len(cells)), key=lambda i: cells[i])
    ranks = [0] * len(cells)
    for rank, cell in enumerate(order):
        ranks[cell] = rank
    return torch.tensor(ranks, dtype=torch.float32)


def tnet_padded_size(size: int, patch_size: int) -> int:
    """Side of the internally padded map: multiple of the patch size and of the coarse factor."""
    multiple = patch_size if patch_size % COARSE_FACTOR == 0 else patch_size * COARSE_FACTOR
    return padded_size(size, multiple)


def tnet_grid_size(size: int, patch_size: int) -> int:
    """Cells per side of the location module's grid (G) for a map of side ``size``."""
    return tnet_padded_size(size, patch_size) // patch_size


def to_patches(x: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Cut [B, C, Np, Np] into non-overlapping patches: [B, G*G, C, P, P], cells row-major."""
    batch, channels, size, _ = x.shape
    grid = size // patch_size
    x = x.reshape(batch, channels, grid, patch_size, grid, patch_size)  # [B, C, G, P, G, P]
    x = x.permute(0, 2, 4, 1, 3, 5)  # [B, G, G, C, P, P]
    return x.reshape(batch, grid * grid, channels, patch_size, patch_size)  # [B, G*G, C, P, P]


def from_patches(patches: torch.Tensor, grid: int) -> torch.Tensor:
    """Inverse of `to_patches`: [B, G*G, C, P, P] -> [B, C, G*P, G*P]."""
    batch, _, channels, patch_size, _ = patches.shape
    x = patches.reshape(batch, grid, grid, channels, patch_size, patch_size)  # [B, G, G, C, P, P]
    x = x.permute(0, 3, 1, 4, 2, 5)  # [B, C, G, P, G, P]
    return x.reshape(batch, channels, grid * patch_size, grid * patch_size)  # [B, C, Np, Np]


class LocationModule(nn.Module):
    """Attention distribution over the G x G grid of cells from coarse features (TNet's location module).

    Each cell is described by its mean feature and the map's global mean (TNet feeds the location module
    local and context features); two 1x1 convolutions score it; softmax over all cells.
    """

    def __init__(self, channels: int, hidden: int, patch_size: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.score = nn.Sequential(
            nn.Conv2d(2 * channels, hidden, kernel_size=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, 1, kernel_size=1),
        )

    def forward(self, coarse: torch.Tensor) -> torch.Tensor:
        """coarse: [B, C, Np, Np] (upsampled coarse features) -> cell scores (logits) [B, G*G]."""
        cells = F.avg_pool2d(coarse, self.patch_size)  # [B, C, G, G]
        context = cells.mean(dim=(2, 3), keepdim=True).expand_as(cells)  # [B, C, G, G]
        scores = self.score(torch.cat([cells, context], dim=1))  # [B, 1, G, G]
        return scores.flatten(1)  # [B, G*G]; softmax over all cells is taken by the caller


class TNet(nn.Module):
    """Dense multi-scale hard-attention network: ``[B, C_in, N, N] -> [B, C_out, N, N]``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        size: int,
        channels: int = 64,
        patch_size: int = 6,
        top_k: int = 8,
        location_hidden: int = 32,
    ) -> None:
        super().__init__()
        if patch_size < 1 or patch_size > size:
            raise ValueError(f"TNet patch size must be in [1, map size {size}], got {patch_size}")
        self.size = size
        self.patch_size = patch_size
        self.padded = tnet_padded_size(size, patch_size)
        self.grid = self.padded // patch_size
        num_cells = self.grid * self.grid
        if not 1 <= top_k <= num_cells:
            raise ValueError(
                f"TNet top_k must be in [1, {num_cells}] (grid {self.grid} x {self.grid} for map size "
                f"{size}, patch {patch_size}), got {top_k}"
            )
        self.top_k = top_k
        # Constant of the graph, not a parameter: excluded from checkpoints (persistent=False).
        self.register_buffer("tie_break", cell_ranks(self.grid) * TIE_BREAK_STEP, persistent=False)
        self.stem = ConvBlock(in_channels, channels)
        self.coarse = ConvBlock(channels, channels)
        self.location = LocationModule(channels, location_hidden, patch_size)
        self.refine = ConvBlock(channels, channels)
        self.fuse = ConvBlock(3 * channels, channels)
        self.head = nn.Conv2d(channels, out_channels, kernel_size=1)

    def select_cells(self, scores: torch.Tensor) -> torch.Tensor:
        """Indices of the k best cells, [B, G*G] scores -> int64 [B, k], distinct, ties to the top-left.

        Logits order cells like log-probabilities (same per-row constant) without a log(0) risk.
        """
        _, top_cells = torch.topk(scores - self.tie_break, self.top_k, dim=-1)  # [B, k], k a constant
        return top_cells

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, C_in, N, N] -> [B, C_out, N, N]."""
        if x.shape[-1] != self.size or x.shape[-2] != self.size:
            raise ValueError(f"TNet was built for {self.size} x {self.size} maps, got {tuple(x.shape)}")
        pad = self.padded - self.size
        x = F.pad(x, (0, pad, 0, pad))  # [B, C_in, Np, Np]
        fine = self.stem(x)  # [B, C, Np, Np]
        coarse = self.coarse(F.avg_pool2d(fine, COARSE_FACTOR))  # [B, C, Np/2, Np/2]
        coarse = F.interpolate(coarse, scale_factor=COARSE_FACTOR, mode="nearest")  # [B, C, Np, Np]

        scores = self.location(coarse)  # [B, G*G]
        probs = torch.softmax(scores, dim=-1)  # [B, G*G]
        top_cells = self.select_cells(scores)  # [B, k]
        top_probs = torch.gather(probs, 1, top_cells)  # [B, k]
        patches = to_patches(fine, self.patch_size)  # [B, G*G, C, P, P]
        batch, _, channels, patch, _ = patches.shape
        index = top_cells.reshape(batch, self.top_k, 1, 1, 1).expand(-1, -1, channels, patch, patch)
        selected = torch.gather(patches, 1, index)  # [B, k, C, P, P]
        refined = self.refine(selected.reshape(batch * self.top_k, channels, patch, patch))  # [B*k, C, P, P]
        refined = refined.reshape(batch, self.top_k, channels, patch, patch)  # [B, k, C, P, P]
        # Weight by the cell's probability, rescaled so that a uniform distribution weights by 1: the
        # refined features keep their scale and d(output)/d(prob) carries the location module's gradient.
        weight = top_probs * float(self.grid * self.grid)  # [B, k]
        refined = refined * weight.reshape(batch, self.top_k, 1, 1, 1)  # [B, k, C, P, P]
        placed = torch.zeros_like(patches).scatter(1, index, refined)  # [B, G*G, C, P, P]; cells distinct
        refined_map = from_patches(placed, self.grid)  # [B, C, Np, Np]

        fused = self.fuse(torch.cat([fine, coarse, refined_map], dim=1))  # [B, C, Np, Np]
        out = self.head(fused)  # [B, C_out, Np, Np]
        return out[:, :, : self.size, : self.size]  # [B, C_out, N, N]
