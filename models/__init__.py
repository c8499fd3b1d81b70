"""PyTorch definitions of talkrt's trained submodules (LivePortrait's F, M, W, G, S; JoyVASA's
denoiser; the builtin motion transformer), shared by `talkrt.export` (import, conversion, export)
and the runtime's torch backend. Imports torch; the runtime's core never imports this package."""
