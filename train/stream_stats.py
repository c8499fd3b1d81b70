"""The builtin motion model's streaming normalisation statistics, written into its JSON.

Training removed each utterance's mean log-mel. A stream has no utterance: it removes the running
mean of its speech frames (RMS above -50 dBFS), which is higher than an utterance mean because an
utterance's pauses pull the mean down. This script measures, over speech clips of the kind the
model was trained on (the synthetic example voice by default), the mean mel of speech frames (the
prior a stream starts from) and the average gap between the speech-frame mean and the whole-clip
mean (the offset subtracted back).

    python train/stream_stats.py [clip.wav ...]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from talkrt.runtime.audio_enc import encode
from talkrt.runtime.audio_io import load_audio

ROOT = Path(__file__).resolve().parents[1]
TARGETS = (ROOT / "runtime" / "models" / "motion_builtin.json", ROOT / "train" / "weights" / "motion_builtin.json")


DEFAULT_CLIPS = (ROOT / "examples" / "speech.wav",)


def stream_stats(clips=DEFAULT_CLIPS) -> dict:
    """The JSON `stats` entries: speech-frame mean mel (prior) and its gap to the clip mean (offset)."""
    priors, offsets = [], []
    for clip in clips:
        f = encode(load_audio(clip), 25.0)
        speech = f.rms_db > -50.0
        priors.append(f.mel[speech].mean(0))
        offsets.append(f.mel[speech].mean(0) - f.mel.mean(0))
    return {"mel_speech_prior": [round(float(v), 5) for v in np.mean(priors, 0)],
            "mel_speech_offset": [round(float(v), 5) for v in np.mean(offsets, 0)],
            "stream_stats_from": [Path(c).name for c in clips]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("clips", nargs="*", default=[str(c) for c in DEFAULT_CLIPS])
    args = p.parse_args()
    stats = stream_stats(args.clips)
    for target in TARGETS:
        meta = json.loads(target.read_text())
        meta["stats"].update(stats)
        target.write_text(json.dumps(meta, indent=1) + "\n")
        print(f"wrote {target.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
