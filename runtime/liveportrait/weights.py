"""Where the liveportrait family's files live, and `talkrt weights fetch` for users with a network.

A weights folder holds the public layout (liveportrait/base_models/*.pth,
liveportrait/retargeting_models/stitching_retargeting_module.pth, JoyVASA/..., a transformers
HuBERT folder); the exported ONNX stages go to its `onnx/` subfolder, made on first use by the
export stage (which needs torch) in a separate process: the runtime never imports it.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from talkrt.runtime.errors import TalkrtError

# what `talkrt weights fetch` downloads: (repository, file patterns, subfolder of the weights folder)
SOURCES = {
    "liveportrait": [("KwaiVGI/LivePortrait", ["liveportrait/base_models/*.pth",
                                               "liveportrait/retargeting_models/*.pth"], ".")],
    "joyvasa": [("jdh-algo/JoyVASA", ["motion_generator/*.pt", "motion_template/*.pkl"], "JoyVASA"),
                ("TencentGameMate/chinese-hubert-base", ["config.json", "preprocessor_config.json", "pytorch_model.bin"],
                 "chinese-hubert-base")],
}


def find_audio_encoder(weights: Path) -> Path | None:
    """A transformers HuBERT / wav2vec2 folder somewhere under the weights folder."""
    for cfg in sorted(weights.rglob("config.json")):
        try:
            kind = json.loads(cfg.read_text()).get("model_type")
        except (OSError, json.JSONDecodeError):
            continue
        if kind in ("hubert", "wav2vec2"):
            return cfg.parent
    return None


def onnx_folder(weights: Path) -> Path:
    """The exported stages for `weights`, exporting them first when needed."""
    if not weights.is_dir():
        raise TalkrtError(weights, "weights folder does not exist")
    for cand in (weights, weights / "onnx"):
        if (cand / "manifest.json").is_file():
            return cand
    hubert = find_audio_encoder(weights)
    if hubert is None:
        raise TalkrtError(weights, "no HuBERT/wav2vec2 folder (config.json) found; run `talkrt weights fetch joyvasa`")
    out = weights / "onnx"
    cmd = [sys.executable, "-m", "talkrt.export.export_liveportrait", "--weights", str(weights), "--out", str(out),
           "--hubert", str(hubert)]
    config = weights / "models.json"
    if config.is_file():
        cmd += ["--config", str(config)]
    # run outside the caller's folder: a talkrt checkout there would shadow packages (kernels/)
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=weights.resolve())
    if res.returncode != 0:
        last = (res.stderr.strip().splitlines() or ["unknown error"])[-1]
        raise TalkrtError(weights, f"exporting the models to ONNX failed: {last}")
    return out


def fetch(which: str, weights: Path, download=None) -> list[Path]:
    """Download the public files into the layout `onnx_folder` reads. `download` defaults to
    huggingface_hub.snapshot_download (injectable for tests)."""
    if which not in SOURCES:
        raise TalkrtError(f"weights fetch {which}", f"unknown set (choose from {', '.join(SOURCES)})")
    if download is None:
        try:
            from huggingface_hub import snapshot_download as download
        except ImportError:
            raise TalkrtError("weights fetch", "needs huggingface_hub (pip install huggingface_hub)") from None
    done = []
    for repo, patterns, sub in SOURCES[which]:
        target = (weights / sub).resolve()
        target.mkdir(parents=True, exist_ok=True)
        try:
            download(repo_id=repo, allow_patterns=patterns, local_dir=str(target))
        except Exception as exc:  # network or hub errors, whatever the client raises
            first = (str(exc).strip().splitlines() or [""])[0]
            raise TalkrtError(f"weights fetch {which}", f"downloading {repo} failed ({exc.__class__.__name__}: {first})") from None
        done.append(target)
    return done
