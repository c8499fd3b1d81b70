"""3-D (volumetric) grid sample: trilinear, zeros padding, align_corners False or True.

Same contract as `torch.nn.functional.grid_sample` on 5-D input: volume [N, C, D, H, W],
grid [N, Do, Ho, Wo, 3] ordered (x, y, z) in [-1, 1] -> out [N, C, Do, Ho, Wo]. Any strides are
accepted; the output keeps the input's memory format, so a channels-last volume
(`torch.channels_last_3d`) is read as 8 contiguous C-vectors per output voxel.

Bytes moved per output voxel: 12 (grid, fp32) + 8 corners x C x 2 or 4 (gathered; neighbouring
voxels share most corners, so the cache absorbs much of it) + C x 2 or 4 written. Accumulation is
fp32 whatever the storage type. TensorRT has no 5-D GridSample (specs/toolchain.md section 3.1): this
kernel, its CUDA C++ twin in kernels/cuda/ and the plugin are what replace it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
import triton
import triton.language as tl


def grid_sample3d_ref(volume: torch.Tensor, grid: torch.Tensor, align_corners: bool = False) -> torch.Tensor:
    """The reference: PyTorch's own 5-D grid sample."""
    return F.grid_sample(volume, grid.to(volume.dtype), mode="bilinear", padding_mode="zeros",
                         align_corners=align_corners)


@triton.jit
def _unnormalize(g, size, ALIGN: tl.constexpr):
    """[-1, 1] -> voxel index space, fp32."""
    if ALIGN:
        return (g + 1.0) * 0.5 * (size - 1)
    return ((g + 1.0) * size - 1.0) * 0.5


@triton.jit
def trilinear_gather(src_ptr, base, s_c, s_d, s_h, s_w, ch, ch_mask, ix, iy, iz, D, H, W, v_mask):
    """Trilinear sample of a [C, D, H, W] volume at voxel-space points.

    base [BV] int64 offset of each point's batch item; ch [BC] channel indices; ix/iy/iz [BV] fp32.
    Corners outside the volume read as zero (padding_mode='zeros'). Returns [BV, BC] fp32."""
    x0f = tl.floor(ix)
    y0f = tl.floor(iy)
    z0f = tl.floor(iz)
    fx = ix - x0f
    fy = iy - y0f
    fz = iz - z0f
    x0 = x0f.to(tl.int32)
    y0 = y0f.to(tl.int32)
    z0 = z0f.to(tl.int32)
    c_off = ch.to(tl.int64) * s_c
    acc = tl.zeros([ix.shape[0], ch.shape[0]], dtype=tl.float32)
    for dz in tl.static_range(2):
        zi = z0 + dz
        wz = fz * dz + (1.0 - fz) * (1 - dz)
        in_z = (zi >= 0) & (zi < D)
        for dy in tl.static_range(2):
            yi = y0 + dy
            wy = fy * dy + (1.0 - fy) * (1 - dy)
            in_zy = in_z & (yi >= 0) & (yi < H)
            for dx in tl.static_range(2):
                xi = x0 + dx
                wx = fx * dx + (1.0 - fx) * (1 - dx)
                ok = in_zy & (xi >= 0) & (xi < W) & v_mask
                off = base + zi.to(tl.int64) * s_d + yi.to(tl.int64) * s_h + xi.to(tl.int64) * s_w
                v = tl.load(src_ptr + off[:, None] + c_off[None, :], mask=ok[:, None] & ch_mask[None, :], other=0.0)
                acc += v.to(tl.float32) * (wz * wy * wx)[:, None]
    return acc


@triton.jit
def _grid_sample3d_kernel(src_ptr, grid_ptr, out_ptr, C, D, H, W, Do, Ho, Wo, n_vox,
                          s_n, s_c, s_d, s_h, s_w,
                          o_n, o_c, o_d, o_h, o_w,
                          ALIGN: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_C: tl.constexpr):
    pid = tl.program_id(0)
    v = pid * BLOCK_V + tl.arange(0, BLOCK_V)  # flat (n, do, ho, wo), grid is contiguous
    v_mask = v < n_vox
    wo = v % Wo
    ho = (v // Wo) % Ho
    do = (v // (Wo * Ho)) % Do
    n = v // (Wo * Ho * Do)
    g = grid_ptr + v.to(tl.int64) * 3
    gx = tl.load(g, mask=v_mask, other=0.0).to(tl.float32)
    gy = tl.load(g + 1, mask=v_mask, other=0.0).to(tl.float32)
    gz = tl.load(g + 2, mask=v_mask, other=0.0).to(tl.float32)
    ix = _unnormalize(gx, W, ALIGN)
    iy = _unnormalize(gy, H, ALIGN)
    iz = _unnormalize(gz, D, ALIGN)
    base = n.to(tl.int64) * s_n
    out_base = n.to(tl.int64) * o_n + do.to(tl.int64) * o_d + ho.to(tl.int64) * o_h + wo.to(tl.int64) * o_w
    for c0 in range(0, C, BLOCK_C):
        ch = c0 + tl.arange(0, BLOCK_C)
        ch_mask = ch < C
        acc = trilinear_gather(src_ptr, base, s_c, s_d, s_h, s_w, ch, ch_mask, ix, iy, iz, D, H, W, v_mask)
        dst = out_ptr + out_base[:, None] + ch.to(tl.int64)[None, :] * o_c
        tl.store(dst, acc.to(out_ptr.dtype.element_ty), mask=v_mask[:, None] & ch_mask[None, :])


def channel_block(c: int, cap: int = 32) -> int:
    return min(triton.next_power_of_2(max(int(c), 1)), cap)


def grid_sample3d(volume: torch.Tensor, grid: torch.Tensor, align_corners: bool = False,
                  block_v: int = 64) -> torch.Tensor:
    """Trilinear 5-D grid sample; `volume` [N, C, D, H, W] fp32/fp16, `grid` [N, Do, Ho, Wo, 3]."""
    if volume.dim() != 5 or grid.dim() != 5 or grid.shape[-1] != 3 or grid.shape[0] != volume.shape[0]:
        raise ValueError(f"grid_sample3d wants volume [N,C,D,H,W] and grid [N,Do,Ho,Wo,3], "
                         f"got {tuple(volume.shape)} and {tuple(grid.shape)}")
    n, c, d, h, w = volume.shape
    _, do, ho, wo, _ = grid.shape
    grid = grid.contiguous()
    fmt = torch.channels_last_3d if volume.is_contiguous(memory_format=torch.channels_last_3d) and c > 1 \
        else torch.contiguous_format
    out = torch.empty((n, c, do, ho, wo), dtype=volume.dtype, device=volume.device, memory_format=fmt)
    n_vox = n * do * ho * wo
    _grid_sample3d_kernel[(triton.cdiv(n_vox, block_v),)](
        volume, grid, out, c, d, h, w, do, ho, wo, n_vox, *volume.stride(), *out.stride(),
        ALIGN=bool(align_corners), BLOCK_V=block_v, BLOCK_C=channel_block(c))
    return out
