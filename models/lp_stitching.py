"""LivePortrait's stitching and retargeting MLPs S, and the keypoint math they serve."""
from __future__ import annotations

import torch
from torch import nn


class StitchingRetargetingNetwork(nn.Module):
    """Linear-ReLU-...-Linear under `mlp`, keys mlp.0, mlp.2, ..."""

    def __init__(self, input_size: int, hidden_sizes: list[int], output_size: int):
        super().__init__()
        sizes = [input_size] + list(hidden_sizes)
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.ReLU(inplace=False)]
        layers.append(nn.Linear(sizes[-1], output_size))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)


def bins_to_degrees(logits: torch.Tensor) -> torch.Tensor:
    """[B, 66] bin logits -> [B] degrees: softmax expectation * 3 - 97.5."""
    idx = torch.arange(logits.shape[-1], dtype=logits.dtype, device=logits.device)
    return (torch.softmax(logits, dim=-1) * idx).sum(-1) * 3 - 97.5


def rotation_matrix(pitch_deg: torch.Tensor, yaw_deg: torch.Tensor, roll_deg: torch.Tensor) -> torch.Tensor:
    """[B, 3, 3] R = (Rz Ry Rx)^T, for row-vector keypoints (x @ R)."""
    x, y, z = (torch.deg2rad(a) for a in (pitch_deg, yaw_deg, roll_deg))
    one, zero = torch.ones_like(x), torch.zeros_like(x)
    rx = torch.stack([one, zero, zero, zero, x.cos(), -x.sin(), zero, x.sin(), x.cos()], -1).view(-1, 3, 3)
    ry = torch.stack([y.cos(), zero, y.sin(), zero, one, zero, -y.sin(), zero, y.cos()], -1).view(-1, 3, 3)
    rz = torch.stack([z.cos(), -z.sin(), zero, z.sin(), z.cos(), zero, zero, zero, one], -1).view(-1, 3, 3)
    return (rz @ ry @ rx).transpose(1, 2)


def transform_keypoints(kp: torch.Tensor, rotation: torch.Tensor, exp: torch.Tensor, scale: torch.Tensor,
                        t: torch.Tensor) -> torch.Tensor:
    """Eq. 2: s * (kp @ R + exp) + [tx, ty, 0]; kp, exp [B, 63] or [B, 21, 3]."""
    b = kp.shape[0]
    x = (kp.view(b, -1, 3) @ rotation + exp.view(b, -1, 3)) * scale.view(b, 1, 1)
    return torch.cat([x[..., :2] + t.view(b, 1, 3)[..., :2], x[..., 2:]], -1)


def stitch(stitching: StitchingRetargetingNetwork, kp_source: torch.Tensor, kp_driving: torch.Tensor) -> torch.Tensor:
    """Driving keypoints corrected so the head joins the shoulders: + delta[:63], xy + delta[63:65]."""
    b = kp_source.shape[0]
    delta = stitching(torch.cat([kp_source.view(b, -1), kp_driving.view(b, -1)], 1))
    out = kp_driving.view(b, -1, 3) + delta[:, :-2].view(b, -1, 3)
    return torch.cat([out[..., :2] + delta[:, None, -2:], out[..., 2:]], -1)
