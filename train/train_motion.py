"""Train the builtin family's motion model (models/motion_dit.py) on train/make_data.py's data.

    python train/train_motion.py [--data train/data] [--minutes 30] [--out train/weights]

Seeded and reproducible on the CPU (torch's intra-op threading aside). Writes
train/weights/motion_builtin.pt (a plain state dict) and motion_builtin.json (model config,
normalisation statistics, training record with the data manifest's hashes), then exports the
ONNX model the runtime loads (runtime/models/motion_builtin.onnx + .json).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]

from talkrt.models.motion_dit import (COND_AUDIO, COND_EMOTION, COND_GAZE, COND_HEAD, COND_PREV, N_CONDS,  # noqa: E402
                                             MotionDiT, MotionDiTConfig, alpha_bar)

N_MELS = 40
DROP = {COND_AUDIO: 0.1, COND_GAZE: 0.1, COND_PREV: 0.15, COND_HEAD: 0.1, COND_EMOTION: 0.1}
MOUTH_WEIGHT = 3.0  # jaw, spread, round, press matter most for lip sync
PRESS_WEIGHT = MOUTH_WEIGHT  # --press-weight


class MotionData:
    """Utterances from one split, normalised, sampled as (window, previous context) pairs."""

    def __init__(self, path: Path, cfg: MotionDiTConfig, stats: dict | None = None):
        z = np.load(path)
        self.lengths = z["lengths"]
        self.starts = np.concatenate([[0], np.cumsum(self.lengths)[:-1]])
        mel = z["mel"].astype(np.float32)
        mel = np.concatenate([mel[s:s + n] - mel[s:s + n].mean(0) for s, n in zip(self.starts, self.lengths)])
        motion = z["motion"].astype(np.float32)
        # phone log-posteriors of the pretrained acoustic model (runtime/phonetic.py) follow the mel
        # columns when the model is configured for them
        phones = z["phones"].astype(np.float32) if cfg.audio_dim > N_MELS else None
        if phones is not None and phones.shape[1] != cfg.audio_dim - N_MELS:
            raise SystemExit(f"{path}: no phone posteriors for audio_dim {cfg.audio_dim} (rerun make_data.py)")
        if stats is None:
            stats = {"mel_std": mel.std(0).tolist(), "motion_mean": motion.mean(0).tolist(),
                     "motion_std": np.maximum(motion.std(0), 0.02).tolist()}
            if phones is not None:
                stats.update(phone_mean=phones.mean(0).tolist(), phone_std=np.maximum(phones.std(0), 0.05).tolist())
        self.stats = stats
        self.mel = mel / np.array(stats["mel_std"], np.float32)
        if phones is not None:
            self.mel = np.concatenate([self.mel, (phones - np.array(stats["phone_mean"], np.float32))
                                       / np.array(stats["phone_std"], np.float32)], 1)
        self.motion = (motion - np.array(stats["motion_mean"], np.float32)) / np.array(stats["motion_std"], np.float32)
        self.head, self.gaze, self.emotion = z["head"], z["gaze"], z["emotion"]
        self.cfg = cfg
        self.usable = np.nonzero(self.lengths >= cfg.window)[0]
        self.mel_dropout = 0.0

    def batch(self, rng: np.random.Generator, size: int, drop: bool = True):
        cfg = self.cfg
        n, k, e = cfg.window, cfg.context, cfg.n_emotions
        w = self.lengths[self.usable] - n + 1
        utt = self.usable[rng.choice(len(self.usable), size, p=w / w.sum())]
        x0 = np.zeros((size, n, cfg.motion_dim), np.float32)
        audio = np.zeros((size, n, cfg.audio_dim), np.float32)
        pm = np.zeros((size, k, cfg.motion_dim), np.float32)
        pa = np.zeros((size, k, cfg.audio_dim), np.float32)
        controls = np.zeros((size, 3 + e), np.float32)
        mask = np.ones((size, N_CONDS), np.float32)
        for i, u in enumerate(utt):
            s = int(rng.integers(0, self.lengths[u] - n + 1))
            base = self.starts[u]
            x0[i] = self.motion[base + s:base + s + n]
            audio[i] = self.mel[base + s:base + s + n]
            if s >= k:
                pm[i] = self.motion[base + s - k:base + s]
                pa[i] = self.mel[base + s - k:base + s]
            else:
                mask[i, COND_PREV] = 0
            if np.isnan(self.gaze[u]).any():
                mask[i, COND_GAZE] = 0
            else:
                controls[i, 0:2] = self.gaze[u]
            controls[i, 2] = self.head[u]
            controls[i, 3 + self.emotion[u]] = 1
        if drop:
            for col, p in DROP.items():
                mask[:, col] *= rng.random(size) >= p
            if self.mel_dropout and cfg.audio_dim > N_MELS:  # some windows must do with phones alone
                off = rng.random(size) < self.mel_dropout
                audio[off, :, :N_MELS] = 0
                pa[off, :, :N_MELS] = 0
        t = lambda a: torch.from_numpy(a)
        return t(x0), t(audio), t(pm), t(pa), t(controls), t(mask)


def loss_fn(model, batch, rng: torch.Generator):
    x0, audio, pm, pa, controls, mask = batch
    b = x0.shape[0]
    t = torch.rand(b, generator=rng)
    ab = alpha_bar(t)[:, None, None]
    noise = torch.randn(x0.shape, generator=rng)
    x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
    pred = model(x_t, t, audio, pm, pa, controls, mask)
    w = torch.ones(x0.shape[-1])
    w[:4] = MOUTH_WEIGHT
    w[3] = PRESS_WEIGHT
    mse = ((pred - x0) ** 2 * w).mean()
    vel = (((pred[:, 1:] - pred[:, :-1]) - (x0[:, 1:] - x0[:, :-1])) ** 2 * w).mean()
    return mse + 0.5 * vel


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / "train" / "data")
    ap.add_argument("--out", type=Path, default=ROOT / "train" / "weights")
    ap.add_argument("--minutes", type=float, default=30.0, help="wall-clock training budget")
    ap.add_argument("--steps", type=int, default=0, help="stop after this many steps (0 = time budget only)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tiny", action="store_true", help="a tiny model (tests)")
    ap.add_argument("--no-export", action="store_true")
    ap.add_argument("--init", type=Path, help="start from these weights (fine-tuning; same config)")
    ap.add_argument("--mel-dropout", type=float, default=0.3,
                    help="share of training windows whose mel features are blanked (phones only)")
    ap.add_argument("--no-phones", action="store_true", help="log-mel input only (the model before phone posteriors)")
    ap.add_argument("--press-weight", type=float, default=MOUTH_WEIGHT,
                    help="loss weight of lip press (the other mouth channels keep MOUTH_WEIGHT)")
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    trng = torch.Generator().manual_seed(args.seed)
    with np.load(args.data / "train.npz") as z:
        audio_dim = N_MELS + (0 if args.no_phones or "phones" not in z.files else z["phones"].shape[1])
    cfg = (MotionDiTConfig(width=32, layers=1, heads=2, ff=64, audio_dim=audio_dim) if args.tiny
           else MotionDiTConfig(audio_dim=audio_dim))
    data = MotionData(args.data / "train.npz", cfg)
    data.mel_dropout = args.mel_dropout
    held = MotionData(args.data / "heldout.npz", cfg, data.stats) if (args.data / "heldout.npz").exists() else None
    model = MotionDiT(cfg)
    if args.init is not None:
        model.load_state_dict(torch.load(args.init, map_location="cpu"))
    global PRESS_WEIGHT
    PRESS_WEIGHT = args.press_weight
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    budget = args.minutes * 60
    est_steps = args.steps or 100000
    start = time.perf_counter()
    step, log = 0, []
    while True:
        elapsed = time.perf_counter() - start
        if (args.steps and step >= args.steps) or (not args.steps and elapsed >= budget):
            break
        # warm-up, then cosine decay over the time budget (or the step budget)
        frac = step / args.steps if args.steps else elapsed / budget
        lr = args.lr * min(1.0, (step + 1) / 200) * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0)))
        for g in opt.param_groups:
            g["lr"] = lr
        model.train()
        loss = loss_fn(model, data.batch(rng, args.batch), trng)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 100 == 0 or step == 1:
            entry = {"step": step, "s": round(elapsed, 1), "lr": lr, "loss": float(loss.detach())}
            if held is not None and step % 500 == 0:
                model.eval()
                with torch.no_grad():
                    entry["heldout_loss"] = float(loss_fn(model, held.batch(np.random.default_rng(1), 256, drop=False),
                                                          torch.Generator().manual_seed(1)))
            log.append(entry)
            print(json.dumps(entry), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), args.out / "motion_builtin.pt")
    manifest = args.data / "manifest.json"
    from stream_stats import stream_stats  # the runtime's streaming normalisation (train/stream_stats.py)

    meta = {"config": cfg.to_dict(), "stats": {**data.stats, **stream_stats()}, "fps": 25.0,
            "training": {"steps": step, "seconds": round(time.perf_counter() - start, 1), "batch": args.batch,
                         "lr": args.lr, "seed": args.seed, "torch": torch.__version__, "log": log[-20:],
                         "data_manifest": json.loads(manifest.read_text()) if manifest.exists() else None}}
    (args.out / "motion_builtin.json").write_text(json.dumps(meta, indent=1))
    print(f"saved {args.out / 'motion_builtin.pt'} after {step} steps")
    if not args.no_export:
        from talkrt.export.export_motion import export_motion

        export_motion(args.out / "motion_builtin.pt", args.out / "motion_builtin.json",
                      ROOT / "runtime" / "models" / "motion_builtin.onnx")


if __name__ == "__main__":
    sys.exit(main())
