"""`talkrt serve` in a real browser: Debian's Chromium, headless, driven by Playwright, on loopback.

The fake microphone plays speech with pauses; the page is opened with ?autostart=1 (no clicks).
Checked: the state reaches `live` with a first-frame latency, video frames arrive, the mouth region
(read back from the video element through a canvas) moves while speech plays and rests in the
pauses, and audio packets arrive. A screenshot of the page goes to test-artifacts/."""
from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytest.importorskip("playwright")
if CHROMIUM is None:
    pytest.skip("Debian's chromium is not installed (.ci/run installs it)", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = _free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    proc = subprocess.Popen([sys.executable, "-m", "talkrt.runtime.cli", "serve", "--port", str(port),
                             "--token", "t0k"], stdout=open(log, "w"), stderr=subprocess.STDOUT, cwd=log.parent)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"talkrt serve exited: {log.read_text()}")
            time.sleep(0.2)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture(scope="module")
def speech_with_pauses(tmp_path_factory, speech_path) -> Path:
    from talkrt.runtime.audio_io import load_audio

    speech = load_audio(speech_path)
    gap = np.zeros(int(1.6 * 16000), np.float32)
    clip = np.concatenate([gap, speech[:2 * 16000], gap, speech[3 * 16000:5 * 16000], gap])
    path = tmp_path_factory.mktemp("mic") / "mic.wav"
    sf.write(path, clip, 16000, subtype="PCM_16")
    return path


def test_live_avatar_in_chromium(server, speech_with_pauses, portrait_path):
    from playwright.sync_api import sync_playwright

    from talkrt.runtime.avatar import Avatar, AvatarOptions

    pts = Avatar.prepare(portrait_path, AvatarOptions(crop=True)).renderer().points
    lips = pts[[13, 14, 61, 291]]
    x0, y0 = np.floor(lips.min(0) - [6, 8]).astype(int)
    x1, y1 = np.ceil(lips.max(0) + [6, 16]).astype(int)
    args = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={speech_with_pauses}", "--allow-loopback-in-peer-connection",
            "--disable-features=WebRtcHideLocalIpsWithMdns", "--autoplay-policy=no-user-gesture-required",
            "--no-sandbox"]
    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args)
        page = browser.new_page()
        page.goto(server + "/?autostart=1&token=t0k")
        page.wait_for_function("document.body.dataset.state === 'live'", timeout=60000)
        first_ms = float(page.evaluate("document.body.dataset.firstFrameMs"))
        # sample the mouth box every 40 ms for 9 s (one pass of the looping fake microphone)
        samples = page.evaluate(f"""async () => {{
            const v = document.getElementById('video');
            const c = document.createElement('canvas'); c.width = 512; c.height = 512;
            const g = c.getContext('2d', {{willReadFrequently: true}});
            const out = []; const t0 = performance.now();
            while (performance.now() - t0 < 9000) {{
                g.drawImage(v, 0, 0, 512, 512);
                const d = g.getImageData({x0}, {y0}, {x1 - x0}, {y1 - y0}).data;
                let dark = 0; for (let i = 0; i < d.length; i += 4) dark += (d[i] + d[i+1] + d[i+2]) / 3 < 60;
                out.push([performance.now() - t0, v.currentTime, dark]);
                await new Promise(r => setTimeout(r, 40));
            }}
            return out;
        }}""")
        stats = page.evaluate("""async () => {
            const r = await pc.getStats(); let audio = 0, video = 0;
            r.forEach(s => { if (s.type === 'inbound-rtp') { if (s.kind === 'audio') audio = s.packetsReceived;
                                                               else video = s.framesDecoded; } });
            return {audio, video};
        }""")
        page.screenshot(path=str(artifacts / "serve_page.png"))
        browser.close()
    s = np.array(samples)
    assert first_ms > 0 and s[-1, 1] - s[0, 1] > 7.0  # the video clock advanced in real time
    assert stats["video"] > 150 and stats["audio"] > 200  # frames decoded, 20 ms audio packets received
    dark = s[:, 2]  # pixels of the mouth box darker than 60: the cavity (the example smiles with teeth at rest)
    rest = np.median(dark)  # the mouth is at rest more than half of the time (pauses and idle)
    open_ = dark > rest + max(40, 0.01 * (x1 - x0) * (y1 - y0))  # the dark mouth cavity opens
    assert open_.mean() > 0.1, "the mouth never opened while speech played"
    # pauses: stretches of at least 0.8 s (20 samples) in which the mouth stays at rest
    shut = ~open_
    runs = np.diff(np.flatnonzero(np.diff(np.concatenate([[0], shut.astype(int), [0]]))))[::2]
    assert runs.max() >= 20, "the mouth never rested"
