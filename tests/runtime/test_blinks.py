"""The blink floor: blinks added only where the eyes stare, chunk-invariant, exact after a rewind."""
import numpy as np

from talkrt.runtime.builtin.blinks import GAP_S, SHUT, BlinkFloor
from talkrt.runtime.motion import FIELD, MOTION_FIELDS

FPS = 25.0


def _rows(n, blink_every_s=None):
    rows = np.zeros((n, len(MOTION_FIELDS)), np.float32)
    rows[:, FIELD["jaw_open"]] = np.linspace(0, 1, n)  # something else in the rows that must not change
    if blink_every_s:
        for s in range(int(FPS), n, int(blink_every_s * FPS)):
            rows[s:s + 5, FIELD["blink_l"]] = rows[s:s + 5, FIELD["blink_r"]] = [0.6, 1, 1, 0.6, 0.2][:n - s]
    return rows


def _onsets(rows):
    shut = rows[:, [FIELD["blink_l"], FIELD["blink_r"]]].max(1) >= SHUT
    return np.flatnonzero(shut[1:] & ~shut[:-1]) + 1


def test_staring_eyes_get_blinks_at_a_human_rate():
    rows = _rows(int(120 * FPS))
    out = BlinkFloor(seed=3, fps=FPS).apply(rows, 0)
    onsets = _onsets(out)
    per_min = len(onsets) / 2
    assert 9 <= per_min <= 21, per_min
    assert np.diff(onsets).max() / FPS <= GAP_S[1] + 0.5  # never a stare longer than the longest gap
    assert onsets[0] / FPS < 5
    assert np.array_equal(out[:, FIELD["jaw_open"]], rows[:, FIELD["jaw_open"]])
    assert np.array_equal(out[:, FIELD["blink_l"]], out[:, FIELD["blink_r"]])  # both eyes together


def test_a_model_that_blinks_often_is_left_alone():
    rows = _rows(int(60 * FPS), blink_every_s=2.5)
    out = BlinkFloor(seed=0, fps=FPS).apply(rows, 0)
    assert np.array_equal(out[int(FPS):], rows[int(FPS):])  # after the first second (the model's first blink)
    assert len(_onsets(out)) == len(_onsets(rows))


def test_chunking_and_rewind_give_the_same_blinks():
    rows = _rows(int(40 * FPS), blink_every_s=7.0)
    whole = BlinkFloor(seed=5, fps=FPS).apply(rows, 0)
    assert len(_onsets(whole)) > len(_onsets(rows))  # the floor did add blinks here
    f, parts, a = BlinkFloor(seed=5, fps=FPS), [], 0
    for size in (1, 7, 30, 3, 200, 64):
        parts.append(f.apply(rows[a:a + size], a))
        a += size
    parts.append(f.apply(rows[a:], a))
    assert np.array_equal(np.concatenate(parts), whole)

    f = BlinkFloor(seed=5, fps=FPS)
    f.apply(rows[:400], 0)
    f.rewind(310)  # an interruption: frames from 310 on are made again
    assert np.array_equal(f.apply(rows[310:], 310), whole[310:])
