"""Mouth close-ups of the builtin renderer for chosen motion vectors (a visual check, no model):
rest, open vowels at several jaw openings, rounded, spread, p/b/m press, smile, for each portrait.

    python benchmarks/mouth_sheet.py PORTRAIT [PORTRAIT ...] -o sheet.png
"""
from __future__ import annotations

import argparse

import cv2
import numpy as np

from talkrt.runtime.avatar import Avatar, AvatarOptions
from talkrt.runtime.builtin import landmarks as L
from talkrt.runtime.motion import FIELD, MOTION_FIELDS
from talkrt.runtime.profiles import load_settings

POSES = [("rest", {}), ("jaw .3", {"jaw_open": 0.3}), ("jaw .6", {"jaw_open": 0.6}), ("jaw 1", {"jaw_open": 1.0}),
         ("OW", {"jaw_open": 0.5, "lip_round": 0.9}), ("IY", {"jaw_open": 0.3, "lip_spread": 0.9}),
         ("p/b/m", {"jaw_open": 0.1, "lip_press": 1.0}), ("smile", {"smile": 0.8, "jaw_open": 0.3})]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("portraits", nargs="+")
    ap.add_argument("-o", "--output", default="mouth_sheet.png")
    ap.add_argument("--tile", type=int, default=200)
    args = ap.parse_args()
    rows = []
    for path in args.portraits:
        avatar = Avatar.prepare(path, AvatarOptions(crop=True), load_settings("cpu"))
        r = avatar.renderer()
        tiles = []
        for name, fields in POSES:
            m = np.zeros(len(MOTION_FIELDS), np.float32)
            for k, v in fields.items():
                m[FIELD[k]] = v
            img = r.render(m).copy()
            pts = r.rig.points
            c = pts[list(L.LIPS_UPPER_OUTER + L.LIPS_LOWER_OUTER)].mean(0)
            half = 0.9 * r.rig.mouth_width
            x0, y0 = int(c[0] - half), int(c[1] - 0.55 * half)
            tile = cv2.resize(img[y0:y0 + int(1.5 * half), x0:x0 + int(2 * half)], (args.tile, int(args.tile * 0.75)),
                              interpolation=cv2.INTER_CUBIC)
            cv2.putText(tile, name, (5, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
            tiles.append(tile)
        rows.append(np.concatenate(tiles, 1))
    cv2.imwrite(args.output, cv2.cvtColor(np.concatenate(rows, 0), cv2.COLOR_RGB2BGR))


if __name__ == "__main__":
    main()
