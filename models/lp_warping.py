"""LivePortrait's warping module W: dense motion from 21 source/driving 3-D keypoints, two 5-D grid
samples and an occlusion map.

Inputs `feature_3d` [B,32,16,64,64], `kp_driving` [B,21,3], `kp_source` [B,21,3]; outputs
`out` [B,256,64,64], `occlusion_map` [B,1,64,64], `deformation` [B,16,64,64,3].
Coordinates are generated align_corners=True style while both grid samples use
align_corners=False, exactly as the reference does (the weights were trained that way).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from talkrt.models.lp_blocks import Hourglass, SameBlock2d, coordinate_grid_3d

KP_VARIANCE = 0.01


def grid_sample_3d(volume: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """The one 5-D sampling op of W (bilinear, zeros padding, align_corners=False); a single
    place for kernels and plugins to replace."""
    return F.grid_sample(volume, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


class DenseMotionNetwork(nn.Module):
    def __init__(self, block_expansion: int, num_blocks: int, max_features: int, num_kp: int, feature_channel: int,
                 reshape_depth: int, compress: int, estimate_occlusion_map: bool = True):
        super().__init__()
        self.num_kp = num_kp
        self.hourglass = Hourglass(block_expansion, (num_kp + 1) * (compress + 1), num_blocks, max_features)
        self.mask = nn.Conv3d(self.hourglass.out_filters, num_kp + 1, 7, padding=3)
        self.compress = nn.Conv3d(feature_channel, compress, 1)
        self.norm = nn.BatchNorm3d(compress, affine=True)
        self.occlusion = (nn.Conv2d(self.hourglass.out_filters * reshape_depth, 1, 7, padding=3)
                          if estimate_occlusion_map else None)

    def forward(self, feature: torch.Tensor, kp_driving: torch.Tensor, kp_source: torch.Tensor):
        """Returns (deformation, occlusion)."""
        feature = F.relu(self.norm(self.compress(feature)))  # [B, 4, d, h, w]
        inp, sparse = self.motion_input(feature, kp_driving, kp_source)
        prediction = self.hourglass(inp)
        mask = torch.softmax(self.mask(prediction), dim=1)  # [B, k+1, d, h, w]
        deformation = (sparse.permute(0, 1, 5, 2, 3, 4) * mask.unsqueeze(2)).sum(1).permute(0, 2, 3, 4, 1)
        return deformation, self.occlusion_map(prediction)

    def occlusion_map(self, prediction: torch.Tensor) -> torch.Tensor | None:
        if self.occlusion is None:
            return None
        pb, pc, pd, ph, pw = prediction.shape
        return torch.sigmoid(self.occlusion(prediction.reshape(pb, pc * pd, ph, pw)))

    def masks(self, feature: torch.Tensor, kp_driving: torch.Tensor, kp_source: torch.Tensor):
        """The fused path's half: (softmax masks [B, k+1, d, h, w], occlusion), no sparse grids."""
        from talkrt.kernels.keypoint_warp import motion_input

        feature = F.relu(self.norm(self.compress(feature)))
        prediction = self.hourglass(motion_input(feature, kp_driving, kp_source, KP_VARIANCE))
        return torch.softmax(self.mask(prediction), dim=1), self.occlusion_map(prediction)

    def motion_input(self, feature: torch.Tensor, kp_driving: torch.Tensor, kp_source: torch.Tensor):
        """Unfused hourglass input and the sparse motion grids [B, k+1, d, h, w, 3]."""
        b, _, d, h, w = feature.shape
        k = self.num_kp
        grid = coordinate_grid_3d(d, h, w, feature.device).to(feature.dtype)  # [d, h, w, 3]
        # sparse motions: identity (background) + one driving->source shift per keypoint
        shift = (kp_source - kp_driving).to(feature.dtype).view(b, k, 1, 1, 1, 3)
        sparse = torch.cat([grid.expand(b, 1, d, h, w, 3), grid.unsqueeze(0) + shift], dim=1)  # [B, k+1, d, h, w, 3]
        c = feature.shape[1]
        rep = feature.unsqueeze(1).expand(b, k + 1, c, d, h, w).reshape(b * (k + 1), c, d, h, w)
        deformed = grid_sample_3d(rep, sparse.reshape(b * (k + 1), d, h, w, 3)).view(b, k + 1, c, d, h, w)
        # Gaussian heatmaps of driving minus source keypoints, zero for the background
        gauss = lambda kp: torch.exp(-0.5 * ((grid.unsqueeze(0).unsqueeze(0) - kp.to(grid.dtype).view(b, k, 1, 1, 1, 3)) ** 2).sum(-1)
                                     / KP_VARIANCE)
        heat = gauss(kp_driving) - gauss(kp_source)
        heat = torch.cat([torch.zeros(b, 1, d, h, w, device=feature.device, dtype=heat.dtype), heat], 1).unsqueeze(2)
        inp = torch.cat([heat, deformed], dim=2).view(b, -1, d, h, w)  # channel = kp * 5 + {heat, feature}
        return inp, sparse


class WarpingNetwork(nn.Module):
    def __init__(self, num_kp: int = 21, block_expansion: int = 64, max_features: int = 512, num_down_blocks: int = 2,
                 reshape_channel: int = 32, estimate_occlusion_map: bool = True, dense_motion_params: dict | None = None):
        super().__init__()
        dm = dense_motion_params or dict(block_expansion=32, max_features=1024, num_blocks=5, reshape_depth=16, compress=4)
        self.dense_motion_network = DenseMotionNetwork(num_kp=num_kp, feature_channel=reshape_channel,
                                                       estimate_occlusion_map=estimate_occlusion_map, **dm)
        out_ch = block_expansion * 2 ** num_down_blocks
        self.third = SameBlock2d(max_features, out_ch, 3, 1, lrelu=True)
        self.fourth = nn.Conv2d(out_ch, out_ch, 1)
        self.fused, self.keep_deformation = False, True

    def set_fused(self, fused: bool, keep_deformation: bool = True) -> "WarpingNetwork":
        """Route both sampling paths through talkrt's Triton kernels (kernels/keypoint_warp.py):
        no sparse grids, repeated features or deformation blend are materialised. Without
        `keep_deformation` the third output is None (G does not use it) and is never written."""
        self.fused, self.keep_deformation = bool(fused), bool(keep_deformation)
        return self

    def forward(self, feature_3d: torch.Tensor, kp_driving: torch.Tensor, kp_source: torch.Tensor):
        """Returns (out, occlusion_map, deformation)."""
        if self.fused:
            from talkrt.kernels.keypoint_warp import keypoint_warp

            mask, occlusion = self.dense_motion_network.masks(feature_3d, kp_driving, kp_source)
            if self.keep_deformation:
                out, deformation = keypoint_warp(feature_3d, mask, kp_driving, kp_source, return_deformation=True)
            else:
                out, deformation = keypoint_warp(feature_3d, mask, kp_driving, kp_source), None
        else:
            deformation, occlusion = self.dense_motion_network(feature_3d, kp_driving, kp_source)
            out = grid_sample_3d(feature_3d, deformation)
        b, c, d, h, w = out.shape
        out = self.fourth(self.third(out.reshape(b, c * d, h, w)))
        if occlusion is not None:
            out = out * occlusion
        return out, occlusion, deformation
