"""Fused softmax attention for the motion transformers' short sequences (builtin DiT: ~100 tokens,
head dim 32; JoyVASA: ~110 tokens, head dim 64).

softmax(q k^T * scale + mask) v in one kernel: one program per (batch x head, block of queries),
keys/values streamed in blocks with the online-softmax recurrence (running max and sum), so the
[Lq, Lk] score matrix never reaches memory. Moves q, k, v in and the output out: 4 x L x D
elements per head instead of adding 2 x L x L for the scores and probabilities. A boolean mask
([Lq, Lk], True = not allowed, as torch's attn_mask) covers JoyVASA's audio alignment mask.
"""
from __future__ import annotations

import math

import torch
import triton
import triton.language as tl


def attention_ref(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None,
                  scale: float | None = None) -> torch.Tensor:
    """The explicit form the motion DiT exports (models/motion_dit.py), in fp32."""
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = (q.float() @ k.float().transpose(-1, -2)) * scale
    if mask is not None:
        s = s.masked_fill(mask, float("-inf"))
    return (torch.softmax(s, dim=-1) @ v.float()).to(q.dtype)


@triton.jit
def _attention_kernel(q_ptr, k_ptr, v_ptr, o_ptr, mask_ptr, H, Lq, Lk, D, scale,
                      sq_b, sq_h, sq_l, sk_b, sk_h, sk_l, sv_b, sv_h, sv_l, so_b, so_h, so_l,
                      HAS_MASK: tl.constexpr, IEEE: tl.constexpr,
                      BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
    pid_m = tl.program_id(0)
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    dims = tl.arange(0, BLOCK_D)
    row_ok = rows < Lq
    dim_ok = dims < D
    q = tl.load(q_ptr + b * sq_b + h * sq_h + rows[:, None] * sq_l + dims[None, :],
                mask=row_ok[:, None] & dim_ok[None, :], other=0.0)
    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    for n0 in range(0, Lk, BLOCK_N):
        cols = n0 + tl.arange(0, BLOCK_N)
        col_ok = cols < Lk
        kv_mask = col_ok[:, None] & dim_ok[None, :]
        k = tl.load(k_ptr + b * sk_b + h * sk_h + cols[:, None] * sk_l + dims[None, :], mask=kv_mask, other=0.0)
        if IEEE:
            s = tl.dot(q, tl.trans(k), input_precision="ieee") * scale
        else:
            s = tl.dot(q, tl.trans(k)) * scale
        allowed = row_ok[:, None] & col_ok[None, :]
        if HAS_MASK:
            blocked = tl.load(mask_ptr + rows[:, None] * Lk + cols[None, :], mask=allowed, other=1)
            allowed = allowed & (blocked == 0)
        s = tl.where(allowed, s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)  # rows with nothing allowed yet
        p = tl.exp(s - m_safe[:, None])
        alpha = tl.exp(m_i - m_safe)
        l_i = l_i * alpha + tl.sum(p, 1)
        v = tl.load(v_ptr + b * sv_b + h * sv_h + cols[:, None] * sv_l + dims[None, :], mask=kv_mask, other=0.0)
        if IEEE:
            acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision="ieee")
        else:
            acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v)
        m_i = m_new
    out = acc / tl.where(l_i == 0.0, 1.0, l_i)[:, None]  # rows past Lq hold nothing
    tl.store(o_ptr + b * so_b + h * so_h + rows[:, None] * so_l + dims[None, :], out.to(o_ptr.dtype.element_ty),
             mask=row_ok[:, None] & dim_ok[None, :])


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None,
              scale: float | None = None, block_m: int = 32, block_n: int = 32) -> torch.Tensor:
    """q [B, H, Lq, D], k/v [B, H, Lk, D] (last dim contiguous), fp32 or fp16; mask [Lq, Lk] bool."""
    if q.dim() != 4 or k.shape != v.shape or q.shape[:2] != k.shape[:2] or q.shape[3] != k.shape[3]:
        raise ValueError(f"attention wants q [B,H,Lq,D] and k, v [B,H,Lk,D], got {tuple(q.shape)}, "
                         f"{tuple(k.shape)}, {tuple(v.shape)}")
    b, h, lq, d = q.shape
    lk = k.shape[2]
    if mask is not None and mask.shape != (lq, lk):
        raise ValueError(f"mask must be [{lq}, {lk}], got {tuple(mask.shape)}")
    q, k, v = (t if t.stride(-1) == 1 else t.contiguous() for t in (q, k, v))
    out = torch.empty_like(q)
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    mask_u8 = mask.to(torch.uint8).contiguous() if mask is not None else out
    _attention_kernel[(triton.cdiv(lq, block_m), b * h)](
        q, k, v, out, mask_u8, h, lq, lk, d, scale,
        q.stride(0), q.stride(1), q.stride(2), k.stride(0), k.stride(1), k.stride(2),
        v.stride(0), v.stride(1), v.stride(2), out.stride(0), out.stride(1), out.stride(2),
        HAS_MASK=mask is not None, IEEE=q.dtype == torch.float32,
        BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_D=max(16, triton.next_power_of_2(d)))
    return out
