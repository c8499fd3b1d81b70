"""talkrt's motion generator: a VASA-1-style diffusion transformer over motion windows.

Everything is concatenated along time into one token sequence and read by a plain transformer
encoder, which predicts the clean motion window (x0 target):

    [gaze, head, emotion] [prev motion x K] [prev audio x K] [audio x N] [noised motion x N]

Each condition can be dropped (replaced by a learned null token) through `cond_mask`, so that
classifier-free guidance works per condition and the first window runs without previous context.
The diffusion time is embedded and added to every token. The same code serves the builtin family
(17-d motion, log-mel audio) and, at a larger size, the LivePortrait family.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

# cond_mask columns (1 = condition present, 0 = dropped)
COND_AUDIO, COND_GAZE, COND_PREV, COND_HEAD, COND_EMOTION = range(5)
N_CONDS = 5


@dataclass(frozen=True)
class MotionDiTConfig:
    motion_dim: int = 17
    audio_dim: int = 40
    n_emotions: int = 5
    width: int = 128
    layers: int = 4
    heads: int = 4
    ff: int = 256
    window: int = 40  # N frames predicted per call
    context: int = 10  # K frames of previous motion and audio
    dropout: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def alpha_bar(t: torch.Tensor, s: float = 0.008) -> torch.Tensor:
    """Cosine noise schedule, t in [0, 1] (0 = clean)."""
    return torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2 / math.cos(s / (1 + s) * math.pi / 2) ** 2


def _sinusoid(pos: torch.Tensor, dim: int) -> torch.Tensor:
    """[..., dim] sinusoidal embedding of real-valued positions."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=pos.device) / half)
    ang = pos[..., None].float() * freqs
    return torch.cat([torch.sin(ang), torch.cos(ang)], -1)


class Block(nn.Module):
    """Pre-norm transformer block with explicit attention (exports to plain ONNX ops)."""

    def __init__(self, width: int, heads: int, ff: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.head_dim = width // heads
        self.norm1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, ff), nn.GELU(), nn.Linear(ff, width))
        self.drop = nn.Dropout(dropout)
        self.fused = False  # talkrt's Triton attention (kernels/attention.py) instead of the explicit form

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, w = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        if self.fused:
            from talkrt.kernels.attention import attention

            y = attention(q, k, v).transpose(1, 2).reshape(b, n, w)
        else:
            att = torch.softmax(q @ k.transpose(-1, -2) * (1.0 / math.sqrt(self.head_dim)), dim=-1)  # [B, H, n, n]
            y = (att @ v).transpose(1, 2).reshape(b, n, w)
        x = x + self.drop(self.proj(y))
        return x + self.drop(self.mlp(self.norm2(x)))


class MotionDiT(nn.Module):
    def __init__(self, cfg: MotionDiTConfig = MotionDiTConfig()):
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        self.motion_in = nn.Linear(cfg.motion_dim, w)
        self.prev_motion_in = nn.Linear(cfg.motion_dim, w)
        self.audio_in = nn.Linear(cfg.audio_dim, w)
        self.gaze_in = nn.Linear(2, w)
        self.head_in = nn.Linear(1, w)
        self.emotion_in = nn.Linear(cfg.n_emotions, w)
        # learned null tokens for dropped conditions: audio, gaze, prev motion, prev audio, head, emotion
        self.null = nn.Parameter(torch.zeros(6, w))
        self.type_emb = nn.Parameter(torch.zeros(7, w))  # gaze, head, emotion, prev m, prev a, audio, x_t
        self.time_mlp = nn.Sequential(nn.Linear(w, w), nn.SiLU(), nn.Linear(w, w))
        self.blocks = nn.ModuleList(Block(w, cfg.heads, cfg.ff, cfg.dropout) for _ in range(cfg.layers))
        self.norm = nn.LayerNorm(w)
        self.out = nn.Linear(w, cfg.motion_dim)
        nn.init.normal_(self.null, std=0.02)
        nn.init.normal_(self.type_emb, std=0.02)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        n, k = cfg.window, cfg.context
        pos = torch.cat([torch.zeros(3), torch.arange(-k, 0), torch.arange(-k, 0), torch.arange(n), torch.arange(n)])
        self.register_buffer("pos_emb", _sinusoid(pos.float(), w), persistent=False)

    def set_fused(self, fused: bool) -> "MotionDiT":
        for blk in self.blocks:
            blk.fused = bool(fused)
        return self

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, audio: torch.Tensor, prev_motion: torch.Tensor,
                prev_audio: torch.Tensor, controls: torch.Tensor, cond_mask: torch.Tensor) -> torch.Tensor:
        """x_t [B,N,D] noised motion; t [B] in [0,1]; audio [B,N,A]; prev_motion [B,K,D]; prev_audio [B,K,A];
        controls [B, 2+1+E] (gaze x,y | head intensity | emotion one-hot); cond_mask [B,5]. Returns x0 [B,N,D]."""
        cfg = self.cfg
        keep = lambda col: cond_mask[:, col, None, None]  # [B,1,1]
        mix = lambda tokens, col, null_row: keep(col) * tokens + (1 - keep(col)) * self.null[null_row]
        gaze = mix(self.gaze_in(controls[:, None, 0:2]), COND_GAZE, 1)
        head = mix(self.head_in(controls[:, None, 2:3]), COND_HEAD, 4)
        emo = mix(self.emotion_in(controls[:, None, 3:3 + cfg.n_emotions]), COND_EMOTION, 5)
        pm = mix(self.prev_motion_in(prev_motion), COND_PREV, 2)
        pa = mix(self.audio_in(prev_audio), COND_PREV, 3)
        au = mix(self.audio_in(audio), COND_AUDIO, 0)
        xm = self.motion_in(x_t)
        segs = [gaze, head, emo, pm, pa, au, xm]
        h = torch.cat([s + self.type_emb[i] for i, s in enumerate(segs)], 1) + self.pos_emb
        h = h + self.time_mlp(_sinusoid(t * 1000.0, cfg.width))[:, None, :]
        for blk in self.blocks:
            h = blk(h)
        return self.out(self.norm(h[:, -cfg.window:]))


def cfg_combine(x_full: torch.Tensor, x_no_audio: torch.Tensor, x_no_gaze: torch.Tensor,
                lambda_audio: float, lambda_gaze: float) -> torch.Tensor:
    """VASA-1's guidance: (1 + la + lg) m(all) - la m(no audio) - lg m(no gaze)."""
    return (1 + lambda_audio + lambda_gaze) * x_full - lambda_audio * x_no_audio - lambda_gaze * x_no_gaze
