"""Blinks: their shape, and a floor under their rate.

People blink about 15-20 times a minute while they talk, rarely more than 5 s apart. The trained
model blinks as its training rule does on the voices it was trained on (about 18 a minute), but on
real recordings it blinks far less (about 5 a minute on the real-speech set): a face that stares
for ten seconds reads as a photo. `BlinkFloor` keeps the model's own blinks and adds one whenever
the eyes have stayed open longer than a drawn gap (3-6.5 s, a new draw after every blink), so the
rate never falls below about 12 a minute, and adds nothing where the model already blinks often enough.

Causal and chunk-invariant like the motion stages: a frame depends on the frames before it and on
draws keyed by (seed, frame); per-frame snapshots of the state make a rewind exact.
"""
from __future__ import annotations

from collections import deque

import numpy as np

from talkrt.runtime.motion import FIELD

BLINK_SHAPE_S = np.array([0.0, 0.04, 0.08, 0.12, 0.18, 0.25, 0.32])  # lid closure over a blink's time
BLINK_SHAPE_V = np.array([0.0, 0.6, 1.0, 1.0, 0.6, 0.2, 0.0])
GAP_S = (3.0, 6.5)  # the longest the eyes stay open, drawn uniformly after every blink
FIRST_GAP_S = (0.8, 4.0)  # ... and at the start of a stream (the time since the last blink is unknown)
SHUT = 0.5  # a frame whose lids are closed at least this far counts as blinking
EYES = [FIELD["blink_l"], FIELD["blink_r"]]


class BlinkFloor:
    """rows at `fps`, in frame order -> the same rows with a blink added where the eyes stared too long."""

    def __init__(self, seed: int, fps: float):
        self.seed, self.fps = seed, fps
        lo, hi = FIRST_GAP_S
        first = np.random.default_rng([seed, 7 << 28]).uniform(lo, hi)
        # open: frames since the lids were last shut; gap: frames allowed; start: an added blink's first frame
        self.state = (0, int(first * fps), None)
        self.next = 0  # the frame the next row is
        self.snapshots: deque = deque(maxlen=512)  # (frame, state before it) for rewind

    def apply(self, rows: np.ndarray, first: int) -> np.ndarray:
        """Rows of frames first.. (first must be the frame after the last row applied)."""
        if first != self.next:
            raise ValueError(f"blink floor expects frame {self.next}, got {first}")
        out = rows.copy()
        for n in range(len(rows)):
            out[n] = self._frame(first + n, out[n])
        self.next = first + len(rows)
        return out

    def rewind(self, frame: int) -> None:
        """Return to the state before `frame` (a frame applied within the last 512)."""
        while self.snapshots and self.snapshots[-1][0] > frame:
            self.snapshots.pop()
        if self.snapshots and self.snapshots[-1][0] == frame:
            self.state = self.snapshots.pop()[1]
        self.next = frame

    def _frame(self, j: int, row: np.ndarray) -> np.ndarray:
        self.snapshots.append((j, self.state))
        open_frames, gap, start = self.state
        if start is None and open_frames >= gap and row[EYES].max() < 0.1:
            start = j
        if start is not None:
            t = (j - start) / self.fps
            if t > BLINK_SHAPE_S[-1]:
                start = None
            else:
                lid = float(np.interp(t, BLINK_SHAPE_S, BLINK_SHAPE_V))
                row[EYES] = np.maximum(row[EYES], lid)
        if row[EYES].max() >= SHUT:
            lo, hi = GAP_S
            open_frames, gap = 0, int(np.random.default_rng([self.seed, 7 << 28, j]).uniform(lo, hi) * self.fps)
        else:
            open_frames += 1
        self.state = (open_frames, gap, start)
        return row
