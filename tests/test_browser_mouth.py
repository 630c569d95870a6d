"""End to end in a real browser, with the shipped weights: headless Chromium speaks a speech file into
`bya serve` as one character (fake microphone, WHIP from the speaker page); an aiortc viewer watches over
WHEP; the bound character's mouth must move with the speech while the other character's stays still.

The check is relative, so it holds for a model whose mouths move little as long as they move with their
own voice: per character, how far the mouth region departs from its idle look during speech vs during
silence (speech/silence ratio, per received frame; which frames carry speech comes from the room's own
output mix on the engine clock). The bound mouth's ratio must be clearly above 1 and clearly above the
other mouth's. Needs Debian's chromium and pip playwright (skipped without them), like test_web_pages.
"""

from __future__ import annotations

import asyncio
import wave

import numpy as np
import pytest
from test_web_pages import CHROMIUM, FLAGS, playwright

from clients.mouth_motion import (
    activity_contrast,
    crop,
    scene_mouth_boxes,
    separated_world_scene,
    speech_labels,
)
from clients.python.viewer import WhepViewer
from clients.room_tap import LocalServer, RoomTap, whep_first_pts
from clients.speech_bursts import speech_bursts
from realtime.media import WEBRTC_AUDIO_RATE

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium"),
]
BOUND = 1  # the character the browser speaks as
RECORD_S = 14.0  # seconds of video judged: ~6 bursts with their silences
MIN_RATIO = 1.5  # the bound mouth departs from its idle look 50% more in speech than in silence...
MIN_MARGIN = 1.3  # ...and 30% more (in ratio) than any other mouth does


def _write_wav(path, samples: np.ndarray) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(WEBRTC_AUDIO_RATE)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())


def _speech_frames(tap: RoomTap, frames: list[int]) -> np.ndarray:
    """(T,) for engine frames: 1 speech (incl. the response allowance), 0 silence, -1 settling."""
    first, mix = tap.mix()
    per = WEBRTC_AUDIO_RATE * 40 // 1000
    lo = min(frames)
    label = speech_labels(mix, per, lo, max(frames) - lo + 1, offset=first)
    return label[np.asarray(frames) - lo]


def test_bound_mouth_moves_with_the_browser_microphone(tmp_path) -> None:
    from clients.bench_latency import shipped_model
    from realtime.engine.room import Room

    loaded, steps, note = shipped_model(None, None)
    scene, seed = separated_world_scene(2, 0, loaded.generator.cfg.frame_size, 2)
    boxes = scene_mouth_boxes(scene, seed)
    track, _ = speech_bursts(1, 8, gap_s=1.2, lead_s=1.0, tail_s=0.2)
    wav = tmp_path / "speech.wav"
    _write_wav(wav, track[0])

    async def go():
        room = Room(loaded, scene, steps=steps, seed=seed)
        async with LocalServer(room) as local, playwright.async_playwright() as pw:
            tap = RoomTap(room)
            viewer = WhepViewer(keep_images=True)
            browser = await pw.chromium.launch(
                executable_path=CHROMIUM, args=[*FLAGS, f"--use-file-for-fake-audio-capture={wav}"]
            )
            try:
                session = await viewer.offer(local.http, local.base, local.token)
                first = whep_first_pts(local.server, session.id, tap)
                await viewer.connected()
                page = await browser.new_page()
                await page.goto(f"{local.base}/#token={local.token}")
                await page.wait_for_function("document.getElementById('character').options.length == 2")
                await page.select_option("#character", str(BOUND))
                await page.click("#join")
                deadline = asyncio.get_running_loop().time() + 15
                while not any(s.kind == "whip" and s.audio_s > 0.5 for s in local.server.sessions.values()):
                    assert asyncio.get_running_loop().time() < deadline, (
                        "no microphone audio reached the server"
                    )
                    await asyncio.sleep(0.1)
                start = len(viewer.video)
                want = start + round(RECORD_S * 25)  # RECORD_S of the room's 25 fps video
                deadline = asyncio.get_running_loop().time() + RECORD_S + 15
                while len(viewer.video) < want:
                    assert asyncio.get_running_loop().time() < deadline, "the viewer stopped receiving video"
                    await asyncio.sleep(0.1)
                video = viewer.video[start:want]
                whip = next(s for s in local.server.sessions.values() if s.kind == "whip")
                assert room.binding() == {whip.id: BOUND}
            finally:
                await browser.close()
                await viewer.close(local.http, local.token)
                await tap.close()
        return first, tap, video, room.stats()

    first, tap, video, stats = asyncio.run(go())
    assert len(video) >= RECORD_S * 15, f"only {len(video)} frames in {RECORD_S} s"  # frames arrive
    engine = [first + v.index for v in video]
    label = _speech_frames(tap, engine)
    keep = label >= 0
    images = np.stack([v.image for v in video])[keep]
    speech = label[keep] == 1
    assert speech.sum() >= 40 and (~speech).sum() >= 40, (
        f"speech/silence frames {speech.sum()}/{(~speech).sum()}"
    )
    ratios = {k: activity_contrast(crop(images, boxes[k], 2), speech) for k in range(len(boxes))}
    print(f"\nmodel {loaded.path.name} at {steps} step(s) {note}; fresh frames "
          f"{stats['frames'] - stats['repeated_frames']}/{stats['frames']}; mouth activity {ratios}")  # fmt: skip
    bound = ratios[BOUND]["ratio"]
    others = max(r["ratio"] for k, r in ratios.items() if k != BOUND)
    assert bound >= MIN_RATIO and bound >= MIN_MARGIN * others, (
        f"the bound mouth does not follow its voice: speech/silence activity ratio {bound:.2f} "
        f"(needs >= {MIN_RATIO}) vs the other mouth's {others:.2f} (needs >= {MIN_MARGIN}x): {ratios}"
    )
