"""LivePortrait's appearance feature extractor F: [B,3,256,256] -> [B,32,16,64,64] feature volume."""
from __future__ import annotations

import torch
from torch import nn

from talkrt.models.lp_blocks import DownBlock2d, ResBlock3d, SameBlock2d


class AppearanceFeatureExtractor(nn.Module):
    def __init__(self, image_channel: int = 3, block_expansion: int = 64, num_down_blocks: int = 2,
                 max_features: int = 512, reshape_channel: int = 32, reshape_depth: int = 16, num_resblocks: int = 6):
        super().__init__()
        self.image_channel, self.reshape_channel, self.reshape_depth = image_channel, reshape_channel, reshape_depth
        self.first = SameBlock2d(image_channel, block_expansion)
        chans = [min(max_features, block_expansion * 2 ** i) for i in range(num_down_blocks + 1)]
        self.down_blocks = nn.ModuleList(DownBlock2d(chans[i], chans[i + 1]) for i in range(num_down_blocks))
        self.second = nn.Conv2d(chans[-1], max_features, 1)
        self.resblocks_3d = nn.Sequential()
        for i in range(num_resblocks):
            self.resblocks_3d.add_module(f"3dr{i}", ResBlock3d(reshape_channel))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.first(image)
        for block in self.down_blocks:
            x = block(x)
        x = self.second(x)
        b, _, h, w = x.shape
        x = x.view(b, self.reshape_channel, self.reshape_depth, h, w)  # channel = c * depth + d
        return self.resblocks_3d(x)
