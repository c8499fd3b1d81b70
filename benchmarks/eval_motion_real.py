"""The motion model alone on real human speech (no rendering, no dlib): the visible opening
jaw * (1 - press) against the loudness envelope and the phones' openness target, lip press at
p/b/m and jaw on open vowels, per clip of ../shared/real-speech/ (phones by forced alignment of the
known transcripts, else pocketsphinx's recognition). Quick A/B of motion models:

    python benchmarks/eval_motion_real.py
"""
import glob
from pathlib import Path

import numpy as np

from talkrt.runtime.avatar import Avatar, AvatarOptions
from talkrt.runtime.profiles import load_settings
from talkrt.runtime.stream import Stream
from talkrt.runtime.session import stream_file
from talkrt.runtime.motion import MotionControls, FIELD
from talkrt.runtime.audio_io import load_audio
from talkrt.runtime.evaluate import metrics as M
from talkrt.runtime.evaluate.phones import phones_for
T = {"cards-001": "ten of clubs", "cards-002": "four queen of clubs", "cards-003": "seven of clubs",
     "cards-004": "five five", "cards-005": "eight of spades four of clubs seven of hearts", "goforward": "go forward ten meters"}
settings = load_settings("cpu")
av = Avatar.prepare(str(Path(__file__).resolve().parents[1] / "examples" / "portrait.jpg"), AvatarOptions(crop=True), settings)
rows = []
for path in sorted(glob.glob(str(Path(__file__).resolve().parents[2] / "shared" / "real-speech" / "*.wav"))):
    name = path.split("/")[-1][:-4]
    a = load_audio(path)
    st = Stream(av, MotionControls(seed=0, steps=settings.steps), live=False, policy="wait")
    mo = np.array([f.motion for f in stream_file(st, a, 1000)])
    st.close()
    n = len(mo)
    env = M.envelope(a, 16000, 25.0, n)
    open_ = mo[:, FIELD["jaw_open"]] * (1 - mo[:, FIELD["lip_press"]])
    phones, src = phones_for(a, T.get(name))
    r_env = M.best_lag_correlation(open_, env)["r"]
    r_ph = M.best_lag_correlation(open_, M.openness_target(phones, 25.0, n))["r"] if phones else np.nan
    bil = M.phone_frames(phones, 25.0, n, M.BILABIALS)
    press = [mo[max(0, a_ - 1):b + 2, FIELD["lip_press"]].max() for _, a_, b in bil]
    ov = M.phone_frames(phones, 25.0, n, M.OPEN_VOWELS)
    jaw_ov = [mo[a_:b + 1, FIELD["jaw_open"]].max() for _, a_, b in ov]
    rows.append((name, r_env, r_ph, np.mean(press) if press else np.nan, len(press), np.median(jaw_ov) if jaw_ov else np.nan))
    print(f"{name:12s} env r {r_env:.2f} phone r {r_ph:.2f} press@pbm {rows[-1][3]:.2f} (n={len(press)}) jaw@open vowels {rows[-1][5]:.2f}", flush=True)
arr = np.array([r[1:] for r in rows], float)
print("MEAN env r %.3f phone r %.3f press@pbm %.3f jaw@ov %.3f" % (np.nanmean(arr[:, 0]), np.nanmean(arr[:, 1]), np.nanmean(arr[:, 2]), np.nanmean(arr[:, 4])))
