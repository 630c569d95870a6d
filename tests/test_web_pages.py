"""The web pages in headless Chromium against the live server: the speaker page joins a character with a
(fake) microphone over WHIP, watches over WHEP and re-binds; the clean viewer page plays by itself.

Needs Debian's `chromium` and pip `playwright` (driven with executable_path; nothing is downloaded);
skipped where either is missing. Flags from NOTES.md keep Chromium off the network and on loopback.
"""

from __future__ import annotations

import asyncio
import shutil
import wave

import numpy as np
import pytest
from scipy.signal import resample_poly
from test_server import TOKEN, loaded, served, wait_for  # noqa: F401 (loaded is a fixture)

from realtime.media import AUDIO_SAMPLE_RATE, WEBRTC_AUDIO_RATE

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip("playwright.async_api", reason="needs pip playwright")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium"),
]
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",  # plain 127.0.0.1 candidates, no mDNS lookups
]


def _speech_wav(path) -> None:
    from distill.world.dialogue import synthesize_dialogue

    track = synthesize_dialogue(1, seconds=8.0, seed=7).audio[0]
    pcm = resample_poly(track, WEBRTC_AUDIO_RATE // AUDIO_SAMPLE_RATE, 1)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(WEBRTC_AUDIO_RATE)
        w.writeframes((np.clip(pcm, -1, 1) * 32767).astype("<i2").tobytes())


async def _frames_decoded(page, selector: str) -> int:
    return await page.evaluate(
        f"() => {{ const v = document.querySelector('{selector}'); "
        "return v && v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality().totalVideoFrames : 0; }"
    )


def test_speaker_and_viewer_pages_in_chromium(loaded, tmp_path) -> None:  # noqa: F811
    wav = tmp_path / "speech.wav"
    _speech_wav(wav)

    async def go() -> None:
        async with served(loaded) as (server, base, _http), playwright.async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=CHROMIUM, args=[*FLAGS, f"--use-file-for-fake-audio-capture={wav}"]
            )
            try:
                speaker = await browser.new_page()
                errors: list[str] = []
                speaker.on("pageerror", lambda e: errors.append(str(e)))
                await speaker.goto(f"{base}/#token={TOKEN}")
                await speaker.wait_for_function("document.getElementById('character').options.length == 2")
                await speaker.select_option("#character", "1")
                await speaker.click("#join")
                await wait_for(lambda: any(s.kind == "whip" for s in server.sessions.values()), 10)
                whip = next(s for s in server.sessions.values() if s.kind == "whip")
                assert whip.character == 1 and server.room.binding() == {whip.id: 1}
                await wait_for(lambda: whip.audio_s > 1.0, 15)  # mic arrives
                await speaker.click("#watch")
                await speaker.wait_for_function(
                    "document.getElementById('stage').videoWidth > 0", timeout=15000
                )
                # the stage takes the scene's own shape; only a small scene is scaled up pixelated
                width, small, box = await speaker.evaluate(
                    "(() => { const v = document.getElementById('stage'); const r = v.getBoundingClientRect();"
                    " return [v.videoWidth, v.classList.contains('small'), r.width / r.height]; })()"
                )
                assert small == (width <= 256) and abs(box - 1.0) < 0.05  # this room's scene is square
                await speaker.select_option("#character", "0")
                await speaker.click("#rebind")
                await wait_for(lambda: server.room.binding() == {whip.id: 0}, 5)

                viewer = await browser.new_page()
                await viewer.goto(f"{base}/viewer#token={TOKEN}")
                await viewer.wait_for_function(
                    "document.getElementById('stage').videoWidth > 0", timeout=15000
                )
                first = await _frames_decoded(viewer, "#stage")
                deadline = asyncio.get_running_loop().time() + 10
                while await _frames_decoded(viewer, "#stage") <= first + 10:  # it keeps playing (~25 fps)
                    assert asyncio.get_running_loop().time() < deadline, "the viewer page stopped decoding"
                    await asyncio.sleep(0.1)
                assert sum(s.kind == "whep" for s in server.sessions.values()) == 2

                await speaker.click("#leave")
                await wait_for(lambda: not any(s.kind == "whip" for s in server.sessions.values()), 5)
                assert errors == []
            finally:
                await browser.close()

    asyncio.run(go())
