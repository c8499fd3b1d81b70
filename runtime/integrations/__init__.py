"""Adapters that put a talkrt Stream under voice-agent frameworks (optional extras):
`livekit` (LiveKit Agents' avatar worker) and `pipecat` (a frame processor after TTS). Each adds
nothing to the pipeline: audio in, the Stream's frames (and their audio, re-timed) out."""
