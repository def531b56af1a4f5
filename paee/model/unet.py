"""DocuNet-style U-Net over the N x N pair map: the ablation backbone beside TNet.

Interface shared with `paee.model.tnet.TNet`: a module mapping ``[B, C_in, N, N] -> [B, C_out, N, N]``.
The map side N (42 for DocRED) need not be a multiple of 2^depth: the input is zero-padded at the bottom
and right to the next multiple and the output cropped back, both with constant amounts for a given N, so
the exported graph has static shapes.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

#: Spatial reduction of one down step (max-pool 2 x 2, as in U-Net / DocuNet).
DOWN_FACTOR = 2


class ConvBlock(nn.Module):
    """(3x3 conv -> BatchNorm -> ReLU) x 2, spatial size kept: the U-Net "double conv".

    BatchNorm as in DocuNet's U-Net; at export it folds into the convolutions.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, C_in, h, w] -> [B, C_out, h, w]."""
        return self.layers(x)


def padded_size(size: int, multiple: int) -> int:
    """Smallest multiple of ``multiple`` that is >= size."""
    return -(-size // multiple) * multiple


class UNet(nn.Module):
    """Encoder-decoder with skip connections: ``depth`` down steps (channels doubling), as many up steps."""

    def __init__(self, in_channels: int, out_channels: int, channels: int = 64, depth: int = 2) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"U-Net depth must be >= 1, got {depth}")
        if channels < 1:
            raise ValueError(f"U-Net channels must be >= 1, got {channels}")
        self.depth = depth
        widths = [channels * DOWN_FACTOR**level for level in range(depth + 1)]  # per resolution level
        self.stem = ConvBlock(in_channels, widths[0])
        self.down = nn.ModuleList(ConvBlock(widths[i], widths[i + 1]) for i in range(depth))
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(widths[i + 1], widths[i], kernel_size=DOWN_FACTOR, stride=DOWN_FACTOR)
            for i in reversed(range(depth))
        )
        # After an up step the skip features (widths[i]) are concatenated: 2 * widths[i] channels in.
        self.merge = nn.ModuleList(ConvBlock(2 * widths[i], widths[i]) for i in reversed(range(depth)))
        self.head = nn.Conv2d(widths[0], out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, C_in, N, N] -> [B, C_out, N, N]."""
        size_h, size_w = x.shape[-2], x.shape[-1]
        multiple = DOWN_FACTOR**self.depth
        pad_h = padded_size(size_h, multiple) - size_h
        pad_w = padded_size(size_w, multiple) - size_w
        x = F.pad(x, (0, pad_w, 0, pad_h))  # [B, C_in, Np, Np]; zeros bottom/right, static amounts
        features = self.stem(x)  # [B, c, Np, Np]
        skips = []
        for block in self.down:  # depth is a constant: unrolled at export
            skips.append(features)
            features = block(F.max_pool2d(features, DOWN_FACTOR))  # [B, 2c', h/2, w/2]
        for upsample, merge in zip(self.up, self.merge):
            features = upsample(features)  # [B, c', 2h, 2w]
            features = merge(torch.cat([features, skips.pop()], dim=1))  # [B, c', 2h, 2w]
        out = self.head(features)  # [B, C_out, Np, Np]
        return out[:, :, :size_h, :size_w]  # [B, C_out, N, N]
