#!/usr/bin/env bash
# Regenerates examples/speech.wav: synthetic English speech from espeak-ng (Debian package
# `espeak-ng`), resampled to 16 kHz mono 16-bit with sox. Output is deterministic.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
text="Hello! I am a talking portrait made by talkrt. Listen: papa bought a big bamboo boat, \
and my mother made marmalade. Then, after a short pause, we keep on talking about the weather."
tmp=$(mktemp --suffix .wav)
trap 'rm -f "$tmp"' EXIT
espeak-ng -v en-us -s 150 -g 4 -w "$tmp" "$text"
sox "$tmp" -r 16000 -c 1 -b 16 "$here/speech.wav"
