"""The one backbone API (timm style): four feature maps at strides 4, 8, 16 and 32."""

from __future__ import annotations

from torch import nn

FEATURE_STRIDES: tuple[int, int, int, int] = (4, 8, 16, 32)


class Backbone(nn.Module):
    """A backbone maps a normalised ``[B, 3, H, W]`` image to four feature maps.

    ``forward`` returns a list ``[C2, C3, C4, C5]`` at strides :data:`FEATURE_STRIDES` with
    ``channels[i]`` channels each (H and W multiples of 32 give exact sizes ``H/stride``).
    """

    channels: tuple[int, int, int, int]
    strides: tuple[int, int, int, int] = FEATURE_STRIDES
