"""Fused keypoint-driven 3-D warp: LivePortrait W's two sampling paths without the per-keypoint tensors.

W (models/lp_warping.py) builds K+1 sparse motion grids [B, K+1, D, H, W, 3], repeats the
compressed feature K+1 times, grid-samples each copy, adds Gaussian keypoint heatmaps and
concatenates (the dense-motion input); later it blends the sparse grids with the softmax masks into
one deformation [B, D, H, W, 3] and samples the feature volume with it. At W's shapes (K=21,
16x64x64 voxels) the sparse grids alone are 17 MB fp32 and the repeated feature 23 MB.

- `motion_input`: keypoints + compressed feature [B, Cc, D, H, W] -> the hourglass input
  [B, (K+1)*(Cc+1), D, H, W] directly (heat channel, then Cc sampled channels, per keypoint).
  Moves the feature in (cache-resident, Cc=4) and the result out, nothing else.
- `keypoint_warp`: keypoints + masks [B, K+1, D, H, W] + feature [B, C, D', H', W'] -> warped
  [B, C, D, H, W] (and optionally the deformation W returns). Moves masks in (K+1 values/voxel),
  8 corners x C gathered, C out.

The occlusion map multiplies W's output after its 3x3 2-D convolution, so it cannot be folded into
the sampling without changing the result; it stays outside.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from talkrt.kernels.grid_sample3d import channel_block, grid_sample3d_ref, trilinear_gather

KP_VARIANCE = 0.01


def identity_grid(d: int, h: int, w: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """[d, h, w, 3] (x, y, z) in [-1, 1], align_corners=True spacing (as W builds it)."""
    axis = lambda n: 2.0 * torch.arange(n, dtype=torch.float32, device=device) / (n - 1) - 1.0
    z, y, x = torch.meshgrid(axis(d), axis(h), axis(w), indexing="ij")
    return torch.stack([x, y, z], dim=-1).to(dtype)


def motion_input_ref(feature: torch.Tensor, kp_driving: torch.Tensor, kp_source: torch.Tensor,
                     variance: float = KP_VARIANCE) -> torch.Tensor:
    """W's unfused path: sparse grids, repeated feature, K+1 grid samples, heatmaps, concatenation."""
    b, c, d, h, w = feature.shape
    k = kp_driving.shape[1]
    grid = identity_grid(d, h, w, feature.device, feature.dtype)
    shift = (kp_source - kp_driving).to(feature.dtype).view(b, k, 1, 1, 1, 3)
    sparse = torch.cat([grid.expand(b, 1, d, h, w, 3), grid.unsqueeze(0) + shift], dim=1)
    rep = feature.unsqueeze(1).expand(b, k + 1, c, d, h, w).reshape(b * (k + 1), c, d, h, w)
    deformed = grid_sample3d_ref(rep, sparse.reshape(b * (k + 1), d, h, w, 3)).view(b, k + 1, c, d, h, w)
    gauss = lambda kp: torch.exp(-0.5 * ((grid[None, None] - kp.to(feature.dtype).view(b, k, 1, 1, 1, 3)) ** 2).sum(-1)
                                 / variance)
    heat = gauss(kp_driving) - gauss(kp_source)
    heat = torch.cat([torch.zeros_like(heat[:, :1]), heat], 1).unsqueeze(2)
    return torch.cat([heat, deformed], dim=2).view(b, -1, d, h, w)


def keypoint_warp_ref(feature: torch.Tensor, mask: torch.Tensor, kp_driving: torch.Tensor,
                      kp_source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """W's unfused deformation (masks x sparse grids, summed) and the final grid sample."""
    b, k1, d, h, w = mask.shape
    k = k1 - 1
    grid = identity_grid(d, h, w, mask.device, mask.dtype)
    shift = (kp_source - kp_driving).to(mask.dtype).view(b, k, 1, 1, 1, 3)
    sparse = torch.cat([grid.expand(b, 1, d, h, w, 3), grid.unsqueeze(0) + shift], dim=1)
    deformation = (sparse.permute(0, 1, 5, 2, 3, 4) * mask.unsqueeze(2)).sum(1).permute(0, 2, 3, 4, 1)
    return grid_sample3d_ref(feature, deformation), deformation


@triton.jit
def _axis(i, n):
    """Identity-grid coordinate of index i along an axis of n (align_corners=True spacing)."""
    return 2.0 * i.to(tl.float32) / (n - 1) - 1.0


@triton.jit
def _motion_input_kernel(src_ptr, kpd_ptr, kps_ptr, out_ptr, C, D, H, W, K, n_sp, inv_var,
                         s_n, s_c, s_d, s_h, s_w,
                         BLOCK_V: tl.constexpr, BLOCK_C: tl.constexpr):
    pid_v = tl.program_id(0)
    k = tl.program_id(1)  # 0 = background (identity), 1..K = keypoints
    b = tl.program_id(2)
    v = pid_v * BLOCK_V + tl.arange(0, BLOCK_V)  # flat (d, h, w)
    v_mask = v < n_sp
    xw = v % W
    yh = (v // W) % H
    zd = v // (W * H)
    gx = _axis(xw, W)
    gy = _axis(yh, H)
    gz = _axis(zd, D)
    kk = tl.maximum(k - 1, 0)
    is_kp = (k > 0).to(tl.float32)
    kp = b * K * 3 + kk * 3
    dx = tl.load(kpd_ptr + kp).to(tl.float32)
    dy = tl.load(kpd_ptr + kp + 1).to(tl.float32)
    dz = tl.load(kpd_ptr + kp + 2).to(tl.float32)
    sx = tl.load(kps_ptr + kp).to(tl.float32)
    sy = tl.load(kps_ptr + kp + 1).to(tl.float32)
    sz = tl.load(kps_ptr + kp + 2).to(tl.float32)
    # sparse motion of this keypoint: the identity grid shifted by source - driving
    px = gx + is_kp * (sx - dx)
    py = gy + is_kp * (sy - dy)
    pz = gz + is_kp * (sz - dz)
    ix = ((px + 1.0) * W - 1.0) * 0.5  # align_corners=False, as W samples
    iy = ((py + 1.0) * H - 1.0) * 0.5
    iz = ((pz + 1.0) * D - 1.0) * 0.5
    ch = tl.arange(0, BLOCK_C)
    ch_mask = ch < C
    base = tl.zeros([BLOCK_V], dtype=tl.int64) + b.to(tl.int64) * s_n
    feat = trilinear_gather(src_ptr, base, s_c, s_d, s_h, s_w, ch, ch_mask, ix, iy, iz, D, H, W, v_mask)
    # heatmap: Gaussian at the driving keypoint minus Gaussian at the source keypoint
    rd = (gx - dx) * (gx - dx) + (gy - dy) * (gy - dy) + (gz - dz) * (gz - dz)
    rs = (gx - sx) * (gx - sx) + (gy - sy) * (gy - sy) + (gz - sz) * (gz - sz)
    heat = is_kp * (tl.exp(-0.5 * rd * inv_var) - tl.exp(-0.5 * rs * inv_var))
    out_b = out_ptr + b.to(tl.int64) * (K + 1) * (C + 1) * n_sp
    c0 = k * (C + 1)
    tl.store(out_b + c0.to(tl.int64) * n_sp + v, heat.to(out_ptr.dtype.element_ty), mask=v_mask)
    dst = out_b + (c0 + 1 + ch).to(tl.int64)[None, :] * n_sp + v[:, None]
    tl.store(dst, feat.to(out_ptr.dtype.element_ty), mask=v_mask[:, None] & ch_mask[None, :])


@triton.jit
def _keypoint_warp_kernel(src_ptr, mask_ptr, kpd_ptr, kps_ptr, out_ptr, def_ptr,
                          C, Ds, Hs, Ws, D, H, W, K, n_sp,
                          s_n, s_c, s_d, s_h, s_w,
                          WRITE_DEF: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_C: tl.constexpr):
    pid_v = tl.program_id(0)
    b = tl.program_id(1)
    v = pid_v * BLOCK_V + tl.arange(0, BLOCK_V)
    v_mask = v < n_sp
    gx = _axis(v % W, W)
    gy = _axis((v // W) % H, H)
    gz = _axis(v // (W * H), D)
    m_b = mask_ptr + b.to(tl.int64) * (K + 1) * n_sp
    # deformation = sum_k m_k * (grid + shift_k), shift_0 = 0; the mask sum is kept, not assumed 1
    m = tl.load(m_b + v, mask=v_mask, other=0.0).to(tl.float32)
    m_sum = m
    ox = tl.zeros([BLOCK_V], dtype=tl.float32)
    oy = tl.zeros([BLOCK_V], dtype=tl.float32)
    oz = tl.zeros([BLOCK_V], dtype=tl.float32)
    for k in range(0, K):
        m = tl.load(m_b + (k + 1) * n_sp + v, mask=v_mask, other=0.0).to(tl.float32)
        kp = b * K * 3 + k * 3
        ox += m * (tl.load(kps_ptr + kp).to(tl.float32) - tl.load(kpd_ptr + kp).to(tl.float32))
        oy += m * (tl.load(kps_ptr + kp + 1).to(tl.float32) - tl.load(kpd_ptr + kp + 1).to(tl.float32))
        oz += m * (tl.load(kps_ptr + kp + 2).to(tl.float32) - tl.load(kpd_ptr + kp + 2).to(tl.float32))
        m_sum += m
    px = gx * m_sum + ox
    py = gy * m_sum + oy
    pz = gz * m_sum + oz
    if WRITE_DEF:
        d_b = def_ptr + (b.to(tl.int64) * n_sp + v) * 3
        tl.store(d_b, px.to(def_ptr.dtype.element_ty), mask=v_mask)
        tl.store(d_b + 1, py.to(def_ptr.dtype.element_ty), mask=v_mask)
        tl.store(d_b + 2, pz.to(def_ptr.dtype.element_ty), mask=v_mask)
    ix = ((px + 1.0) * Ws - 1.0) * 0.5
    iy = ((py + 1.0) * Hs - 1.0) * 0.5
    iz = ((pz + 1.0) * Ds - 1.0) * 0.5
    base = tl.zeros([BLOCK_V], dtype=tl.int64) + b.to(tl.int64) * s_n
    out_b = out_ptr + b.to(tl.int64) * C * n_sp
    for c0 in range(0, C, BLOCK_C):
        ch = c0 + tl.arange(0, BLOCK_C)
        ch_mask = ch < C
        acc = trilinear_gather(src_ptr, base, s_c, s_d, s_h, s_w, ch, ch_mask, ix, iy, iz, Ds, Hs, Ws, v_mask)
        dst = out_b + ch.to(tl.int64)[None, :] * n_sp + v[:, None]
        tl.store(dst, acc.to(out_ptr.dtype.element_ty), mask=v_mask[:, None] & ch_mask[None, :])


def _check_kp(kp_driving: torch.Tensor, kp_source: torch.Tensor, b: int) -> int:
    if kp_driving.shape != kp_source.shape or kp_driving.dim() != 3 or kp_driving.shape[0] != b \
            or kp_driving.shape[2] != 3:
        raise ValueError(f"keypoints must both be [B={b}, K, 3], got {tuple(kp_driving.shape)} "
                         f"and {tuple(kp_source.shape)}")
    return kp_driving.shape[1]


def motion_input(feature: torch.Tensor, kp_driving: torch.Tensor, kp_source: torch.Tensor,
                 variance: float = KP_VARIANCE, block_v: int = 128) -> torch.Tensor:
    """Fused dense-motion input: [B, Cc, D, H, W] + keypoints [B, K, 3] -> [B, (K+1)*(Cc+1), D, H, W]."""
    b, c, d, h, w = feature.shape
    k = _check_kp(kp_driving, kp_source, b)
    out = torch.empty((b, (k + 1) * (c + 1), d, h, w), dtype=feature.dtype, device=feature.device)
    n_sp = d * h * w
    _motion_input_kernel[(triton.cdiv(n_sp, block_v), k + 1, b)](
        feature, kp_driving.contiguous(), kp_source.contiguous(), out, c, d, h, w, k, n_sp, 1.0 / variance,
        *feature.stride(), BLOCK_V=block_v, BLOCK_C=triton.next_power_of_2(c))
    return out


def keypoint_warp(feature: torch.Tensor, mask: torch.Tensor, kp_driving: torch.Tensor, kp_source: torch.Tensor,
                  return_deformation: bool = False, block_v: int = 64):
    """Fused deformation + trilinear sample: feature [B, C, Ds, Hs, Ws], softmax masks [B, K+1, D, H, W]
    -> warped [B, C, D, H, W] (plus the deformation [B, D, H, W, 3] when asked)."""
    b, c, ds, hs, ws = feature.shape
    k = _check_kp(kp_driving, kp_source, b)
    if mask.dim() != 5 or mask.shape[:2] != (b, k + 1):
        raise ValueError(f"mask must be [B={b}, K+1={k + 1}, D, H, W], got {tuple(mask.shape)}")
    _, _, d, h, w = mask.shape
    mask = mask.contiguous()
    out = torch.empty((b, c, d, h, w), dtype=feature.dtype, device=feature.device)
    deformation = torch.empty((b, d, h, w, 3) if return_deformation else (1,), dtype=mask.dtype, device=mask.device)
    n_sp = d * h * w
    _keypoint_warp_kernel[(triton.cdiv(n_sp, block_v), b)](
        feature, mask, kp_driving.contiguous(), kp_source.contiguous(), out, deformation,
        c, ds, hs, ws, d, h, w, k, n_sp, *feature.stride(),
        WRITE_DEF=return_deformation, BLOCK_V=block_v, BLOCK_C=channel_block(c))
    return (out, deformation) if return_deformation else out
