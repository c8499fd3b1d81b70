"""LivePortrait's motion extractor M: a ConvNeXt-V2 backbone with seven linear heads.

[B,3,256,256] in [0,1] -> pitch/yaw/roll (66-bin logits), t (3), exp (63), scale (1), kp (63).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

OUTPUTS = ("pitch", "yaw", "roll", "t", "exp", "scale", "kp")


class ChannelsFirstLayerNorm(nn.Module):
    """LayerNorm over dim 1 of [B, C, H, W]."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class GRN(nn.Module):
    """Global response normalisation (ConvNeXt-V2), channels last."""

    def __init__(self, dim: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, 1, 1, dim))
        self.beta = nn.Parameter(torch.zeros(1, 1, 1, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gx = torch.norm(x, p=2, dim=(1, 2), keepdim=True)
        nx = gx / (gx.mean(dim=-1, keepdim=True) + 1e-6)
        return self.gamma * (x * nx) + self.beta + x


class Block(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.grn = GRN(4 * dim)
        self.pwconv2 = nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)  # NHWC
        y = self.pwconv2(self.grn(F.gelu(self.pwconv1(self.norm(y)))))
        return x + y.permute(0, 3, 1, 2)


class ConvNeXtV2(nn.Module):
    def __init__(self, depths=(3, 3, 9, 3), dims=(96, 192, 384, 768), num_kp: int = 21, num_bins: int = 66):
        super().__init__()
        self.downsample_layers = nn.ModuleList([nn.Sequential(nn.Conv2d(3, dims[0], 4, stride=4),
                                                              ChannelsFirstLayerNorm(dims[0]))])
        for i in range(3):
            self.downsample_layers.append(nn.Sequential(ChannelsFirstLayerNorm(dims[i]),
                                                        nn.Conv2d(dims[i], dims[i + 1], 2, stride=2)))
        self.stages = nn.ModuleList(nn.Sequential(*[Block(dims[i]) for _ in range(depths[i])]) for i in range(4))
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.fc_kp = nn.Linear(dims[-1], 3 * num_kp)
        self.fc_scale = nn.Linear(dims[-1], 1)
        self.fc_pitch = nn.Linear(dims[-1], num_bins)
        self.fc_yaw = nn.Linear(dims[-1], num_bins)
        self.fc_roll = nn.Linear(dims[-1], num_bins)
        self.fc_t = nn.Linear(dims[-1], 3)
        self.fc_exp = nn.Linear(dims[-1], 3 * num_kp)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        for down, stage in zip(self.downsample_layers, self.stages):
            x = stage(down(x))
        x = self.norm(x.mean([-2, -1]))
        return (self.fc_pitch(x), self.fc_yaw(x), self.fc_roll(x), self.fc_t(x), self.fc_exp(x),
                self.fc_scale(x), self.fc_kp(x))


class MotionExtractor(nn.Module):
    """Keys under `detector.`, as in the public motion_extractor.pth. Returns OUTPUTS in order."""

    def __init__(self, num_kp: int = 21, backbone: str = "convnextv2_tiny", depths=(3, 3, 9, 3),
                 dims=(96, 192, 384, 768), num_bins: int = 66):
        super().__init__()
        if backbone != "convnextv2_tiny":
            raise ValueError(f"unsupported motion extractor backbone {backbone!r}")
        self.detector = ConvNeXtV2(tuple(depths), tuple(dims), num_kp, num_bins)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.detector(image)
