"""JoyVASA's audio-to-motion denoiser (LivePortrait's 70-d motion space), its cosine schedule and
ancestral sampler, defined for loading the public checkpoint (`{"model": state_dict, "args": ...}`).

Denoiser: tokens [prev motion (K) ; noisy motion (L)] -> Linear -> + diffusion-step embedding
(sinusoid table -> Linear-GELU-Linear) -> + sinusoidal positions -> 8 post-norm transformer
decoder layers over memory [prev audio ; audio] with a diagonal alignment mask (token i sees
audio frame i only) -> Linear-GELU-Linear -> x0 for all K + L tokens.

`legacy_pe`: the public weights were trained with the earlier positional encoding that added the
single row pe[L] to every token instead of pe[:L]; switch it on for those weights.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class JoyVASAConfig:
    motion_feat_dim: int = 70
    feature_dim: int = 256
    n_prev_motions: int = 10
    n_motions: int = 100
    n_diff_steps: int = 50
    n_layers: int = 8
    n_heads: int = 8
    audio_dim: int = 768
    pe_len: int = 600
    legacy_pe: bool = False

    @classmethod
    def from_args(cls, args: dict, legacy_pe: bool = False) -> "JoyVASAConfig":
        if args.get("diff_schedule", "cosine") != "cosine" or args.get("target", "sample") != "sample":
            raise ValueError("only the cosine schedule with x0 ('sample') target is supported")
        return cls(motion_feat_dim=args["motion_feat_dim"], feature_dim=args["feature_dim"],
                   n_prev_motions=args["n_prev_motions"], n_motions=args["n_motions"],
                   n_diff_steps=args["n_diff_steps"], legacy_pe=legacy_pe)


def sinusoid_table(length: int, dim: int) -> torch.Tensor:
    """[1, length, dim]: sin on even, cos on odd channels (the standard transformer table)."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div)
    return pe[None]


class _Table(nn.Module):
    def __init__(self, length: int, dim: int):
        super().__init__()
        self.register_buffer("pe", sinusoid_table(length, dim))


def cosine_schedule(n_steps: int, s: float = 0.008) -> dict[str, torch.Tensor]:
    """Buffers indexed 0..n_steps (index 0 is padding): betas, alphas, alpha_bars, sigmas."""
    ts = torch.arange(n_steps + 1, dtype=torch.float64) / n_steps + s
    f = torch.cos(ts / (1 + s) * math.pi / 2) ** 2
    f = f / f[0]
    betas = torch.cat([torch.zeros(1, dtype=torch.float64), (1 - f[1:] / f[:-1]).clamp(max=0.999)])
    alphas = 1 - betas
    alpha_bars = torch.cumprod(alphas, 0)
    sigmas_inflex = torch.zeros_like(betas)
    sigmas_inflex[1:] = ((1 - alpha_bars[:-1]) / (1 - alpha_bars[1:])) * betas[1:]
    return {"betas": betas.float(), "alphas": alphas.float(), "alpha_bars": alpha_bars.float(),
            "sigmas_flex": betas.sqrt().float(), "sigmas_inflex": sigmas_inflex.sqrt().float()}


class DenoisingNetwork(nn.Module):
    def __init__(self, cfg: JoyVASAConfig):
        super().__init__()
        d = cfg.feature_dim
        self.cfg = cfg
        self.TE = _Table(cfg.n_diff_steps + 1, d)
        self.diff_step_map = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, d))
        self.PE = _Table(cfg.pe_len, d)
        self.feature_proj = nn.Linear(cfg.motion_feat_dim, d)
        layer = nn.TransformerDecoderLayer(d, cfg.n_heads, 4 * d, dropout=0.1, activation="gelu", batch_first=True)
        self.transformer = nn.TransformerDecoder(layer, cfg.n_layers)
        self.motion_dec = nn.Sequential(nn.Linear(d, d // 2), nn.GELU(), nn.Linear(d // 2, cfg.motion_feat_dim))
        n = cfg.n_prev_motions + cfg.n_motions
        self.register_buffer("alignment_mask", ~torch.eye(n, dtype=torch.bool))

    def forward(self, motion: torch.Tensor, audio: torch.Tensor, prev_motion: torch.Tensor, prev_audio: torch.Tensor,
                step: torch.Tensor) -> torch.Tensor:
        """motion [B,L,70], audio [B,L,d], prev_motion [B,K,70], prev_audio [B,K,d], step [B] (1..T) -> [B,K+L,70]."""
        emb = self.diff_step_map(self.TE.pe[0, step.long()]).unsqueeze(1)  # [B, 1, d]
        feat = self.feature_proj(torch.cat([prev_motion, motion], 1)) + emb
        n = feat.shape[1]
        feat = feat + (self.PE.pe[:, n] if self.cfg.legacy_pe else self.PE.pe[:, :n])
        out = self.transformer(feat, torch.cat([prev_audio, audio], 1), memory_mask=self.alignment_mask)
        return self.motion_dec(out)


class JoyVASAMotion(nn.Module):
    """The denoiser plus what the checkpoint stores beside it (audio map, start and null features,
    schedule buffers). The HuBERT encoder is a separate stage (audio_enc)."""

    def __init__(self, cfg: JoyVASAConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.feature_dim
        self.denoising_net = DenoisingNetwork(cfg)
        self.audio_feature_map = nn.Linear(cfg.audio_dim, d)
        self.start_audio_feat = nn.Parameter(torch.zeros(1, cfg.n_prev_motions, d))
        self.start_motion_feat = nn.Parameter(torch.zeros(1, cfg.n_prev_motions, cfg.motion_feat_dim))
        self.null_audio_feat = nn.Parameter(torch.zeros(1, 1, d))
        self.diffusion_sched = nn.Module()
        for name, value in cosine_schedule(cfg.n_diff_steps).items():
            self.diffusion_sched.register_buffer(name, value)

    @torch.no_grad()
    def sample(self, audio_feat: torch.Tensor, prev_motion: torch.Tensor | None = None,
               prev_audio: torch.Tensor | None = None, motion_at_T: torch.Tensor | None = None,
               noise: torch.Tensor | None = None, cfg_scale: float = 2.0, generator: torch.Generator | None = None,
               cfg_mode: str = "incremental"):
        """Ancestral DDPM over all steps, x0 target, classifier-free guidance on audio; one window [B, L, 70].

        `noise[i]` is used at step t = T - i (t > 1); the first window uses the learned start features.
        JoyVASA's 'incremental' and 'independent' modes differ only with several guiding conditions;
        its checkpoints guide on audio alone, where both are uncond + scale * (cond - uncond)."""
        if cfg_mode not in ("incremental", "independent"):
            raise ValueError(f"cfg_mode must be 'incremental' or 'independent', got {cfg_mode!r}")
        sched, cfg = self.diffusion_sched, self.cfg
        b = audio_feat.shape[0]
        prev_motion = self.start_motion_feat.expand(b, -1, -1) if prev_motion is None else prev_motion
        prev_audio = self.start_audio_feat.expand(b, -1, -1) if prev_audio is None else prev_audio
        x = torch.randn(b, cfg.n_motions, cfg.motion_feat_dim, generator=generator) if motion_at_T is None else motion_at_T
        null = self.null_audio_feat.expand(b, cfg.n_motions, -1)
        for i, t in enumerate(range(cfg.n_diff_steps, 0, -1)):
            z = (noise[i] if noise is not None else torch.randn(x.shape, generator=generator)) if t > 1 else torch.zeros_like(x)
            steps = torch.full((2 * b,), t)
            out = self.denoising_net(torch.cat([x, x]), torch.cat([audio_feat, null]), torch.cat([prev_motion, prev_motion]),
                                     torch.cat([prev_audio, prev_audio]), steps)[:, -cfg.n_motions:]
            cond, uncond = out[:b], out[b:]
            x0 = uncond + cfg_scale * (cond - uncond)
            a, ab, ab_prev = sched.alphas[t], sched.alpha_bars[t], sched.alpha_bars[t - 1]
            c0 = torch.sqrt(a) * (1 - ab_prev) / (1 - ab)
            c1 = torch.sqrt(ab_prev) * (1 - a) / (1 - ab)
            x = c0 * x + c1 * x0 + sched.sigmas_inflex[t] * z
        return x


class AudioEncoder(nn.Module):
    """HuBERT's (or wav2vec2's) last hidden state at 50 Hz mapped to the denoiser's feature size:
    waveform [1, N] 16 kHz -> audio_features [1, T, feature_dim]."""

    def __init__(self, hubert: nn.Module, feature_map: nn.Module):
        super().__init__()
        self.hubert, self.feature_map = hubert, feature_map

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.feature_map(self.hubert(waveform).last_hidden_state)
