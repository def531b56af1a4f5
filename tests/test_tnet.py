"""TNet and U-Net map backbones: static shapes for every entity count, gradients, validation."""

from __future__ import annotations

import pytest
import torch

from paee.model.pair_map import sliding_fill, zero_fill
from paee.model.tnet import TNet, cell_ranks, from_patches, tnet_grid_size, to_patches
from paee.model.unet import UNet

N = 42
C_IN, C_OUT = 3, 5  # odd sizes so that mixed-up axes fail


def _backbones() -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    return {
        "tnet": TNet(C_IN, C_OUT, size=N, channels=4, patch_size=6, top_k=8, location_hidden=3),
        "unet": UNet(C_IN, C_OUT, channels=4, depth=2),
    }


@pytest.mark.parametrize("name", ["tnet", "unet"])
@pytest.mark.parametrize("fill", [sliding_fill, zero_fill])
def test_static_output_shape_for_every_n(name: str, fill) -> None:  # noqa: ANN001
    net = _backbones()[name].eval()
    torch.manual_seed(1)
    pair_map = torch.randn(1, N, N, C_IN)
    with torch.no_grad():
        for n in range(1, N + 1):
            filled = fill(pair_map, torch.tensor([n])).permute(0, 3, 1, 2)  # [1, C_IN, N, N]
            out = net(filled)
            assert out.shape == (1, C_OUT, N, N), f"n={n}: {tuple(out.shape)}"
            assert torch.isfinite(out).all()


def test_tnet_gradients_reach_location_module() -> None:
    net = _backbones()["tnet"].train()
    torch.manual_seed(2)
    out = net(torch.randn(2, C_IN, N, N))
    (out * torch.randn_like(out)).sum().backward()
    for name, param in net.location.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, f"no gradient reaches location module parameter {name}"


@pytest.mark.parametrize(("size", "patch", "grid"), [(42, 6, 7), (7, 6, 2), (7, 3, 4), (9, 4, 3)])
def test_tnet_pads_internally(size: int, patch: int, grid: int) -> None:
    assert tnet_grid_size(size, patch) == grid
    net = TNet(C_IN, C_OUT, size=size, channels=4, patch_size=patch, top_k=2, location_hidden=3)
    assert net(torch.randn(2, C_IN, size, size)).shape == (2, C_OUT, size, size)


@pytest.mark.parametrize("size", [7, 42])
@pytest.mark.parametrize("depth", [1, 3])
def test_unet_pads_and_crops(size: int, depth: int) -> None:
    net = UNet(C_IN, C_OUT, channels=2, depth=depth)
    assert net(torch.randn(2, C_IN, size, size)).shape == (2, C_OUT, size, size)


def test_tnet_validation_messages_show_values() -> None:
    with pytest.raises(ValueError, match=r"top_k must be in \[1, 49\].*got 50"):
        TNet(C_IN, C_OUT, size=N, patch_size=6, top_k=50)
    with pytest.raises(ValueError, match="patch size.*43"):
        TNet(C_IN, C_OUT, size=N, patch_size=43)
    with pytest.raises(ValueError, match="depth must be >= 1, got 0"):
        UNet(C_IN, C_OUT, depth=0)
    net = TNet(C_IN, C_OUT, size=N, channels=2, top_k=1)
    with pytest.raises(ValueError, match="built for 42 x 42"):
        net(torch.randn(1, C_IN, 40, 40))


def test_patches_roundtrip_and_cell_ranks() -> None:
    x = torch.randn(2, 3, 12, 12)
    patches = to_patches(x, 4)  # [2, 9, 3, 4, 4]
    assert patches.shape == (2, 9, 3, 4, 4)
    torch.testing.assert_close(patches[:, 5], x[:, :, 4:8, 8:12])  # cell (1, 2), row-major
    assert torch.equal(from_patches(patches, 3), x)
    ranks = cell_ranks(3)
    assert sorted(ranks.tolist()) == list(range(9))
    assert ranks[0] == 0 and ranks.reshape(3, 3)[:2, :2].max() == 3  # top-left 2x2 ring first


def test_tnet_tie_break_prefers_top_left_cells() -> None:
    """Equal scores (a periodic, sliding-filled map) select the cells nearest the real top-left block."""
    net = TNet(C_IN, C_OUT, size=N, channels=2, patch_size=6, top_k=4)
    chosen = net.select_cells(torch.zeros(2, 49))
    assert sorted(chosen[0].tolist()) == [0, 1, 7, 8]  # cells (0,0), (0,1), (1,0), (1,1)
    assert torch.equal(chosen[0], chosen[1])
    scores = torch.zeros(1, 49)
    scores[0, 48] = 1.0  # a real preference beats the tie-break
    assert 48 in net.select_cells(scores)[0].tolist()
