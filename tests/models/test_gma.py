"""Masked vs global masked attention (Mask2Anomaly (Rai et al., 2024), §4.2, eq. 8-11)."""

import pytest
import torch

from anomask.models.transformer_decoder import DecoderLayer, attention_masks

H, W = 4, 6


def _logits() -> torch.Tensor:
    """Mask logits [1, 2, H, W]: query 0 foreground = left half, query 1 = nothing."""
    logits = torch.full((1, 2, H, W), -5.0)
    logits[0, 0, :, : W // 2] = 5.0
    return logits


def test_foreground_background_masks_and_empty_rows():
    foreground, background = attention_masks(_logits(), (H, W), with_background=True)
    left = torch.zeros(H, W, dtype=torch.bool)
    left[:, : W // 2] = True
    assert torch.equal(foreground[0, 0, 0], left.flatten())  # eq. 9
    assert torch.equal(background[0, 0, 0], ~left.flatten())  # eq. 11
    # query 1 has an empty mask: its masked-attention row is opened to every pixel
    assert foreground[0, 0, 1].all()
    # ... and its background is everything
    assert background[0, 0, 1].all()
    only_foreground, none = attention_masks(_logits(), (H, W), with_background=False)
    assert none is None and torch.equal(only_foreground, foreground)


def test_masks_are_resized_to_the_attention_level():
    foreground, _ = attention_masks(_logits(), (H * 2, W * 2), with_background=False)
    assert foreground.shape == (1, 1, 2, H * W * 4)


@pytest.mark.parametrize("gma", [False, True])
def test_background_pixel_changes_query_update_only_with_gma(gma):
    torch.manual_seed(0)
    dim = 32
    layer = DecoderLayer(dim, num_heads=4, dim_feedforward=64, global_masked_attention=gma).eval()
    logits = _logits()[:, :1]  # one query, foreground = left half
    masks = attention_masks(logits, (H, W), with_background=gma)
    tgt, query_pos = torch.randn(1, 1, dim), torch.randn(1, 1, dim)
    memory, memory_pos = torch.randn(1, H * W, dim), torch.randn(1, H * W, dim)

    def run(mem):
        with torch.no_grad():
            return layer(tgt, query_pos, mem, memory_pos, *masks)

    base = run(memory)
    background_pixel, foreground_pixel = W - 1, 0  # row 0: rightmost column vs leftmost
    changed_bg = memory.clone()
    changed_bg[0, background_pixel] += 3.0
    changed_fg = memory.clone()
    changed_fg[0, foreground_pixel] += 3.0
    assert not torch.allclose(run(changed_fg), base)  # foreground always matters
    assert torch.allclose(run(changed_bg), base) != gma  # background only with GMA
