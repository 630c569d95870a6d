"""Outputs besides WebRTC: the MP4 recording plays to its last frame, MPEG-TS over UDP decodes, the virtual
camera fails with one clear line, and `bya serve` finishes its recording on SIGTERM and SIGINT."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from realtime.engine.room import Room
from realtime.media import VIDEO_FPS, WEBRTC_AUDIO_RATE
from realtime.model.autoencoder import AUTOENCODER_CONFIGS, FrameAutoencoder
from realtime.model.checkpoint import save_generator
from realtime.model.config import GENERATOR_CONFIGS
from realtime.model.default_model import LoadedModel
from realtime.model.generator import Generator
from realtime.outputs.recorder import ContainerSink, OutputSinkError, parse_udp_url
from realtime.outputs.virtual_camera import VirtualCameraError, VirtualCameraSink, open_camera
from realtime.scene.scenes import world_scene

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def loaded() -> LoadedModel:
    torch.manual_seed(0)
    gen = Generator(GENERATOR_CONFIGS["tiny"]).eval()
    return LoadedModel(gen, FrameAutoencoder(AUTOENCODER_CONFIGS["ae-s"]).eval(), 1, None)


def _room(loaded: LoadedModel) -> Room:
    return Room(loaded, world_scene(2, seed=1, size=loaded.generator.cfg.frame_size), steps=1, seed=0)


def _speak(room: Room, seconds: float) -> None:
    """Both characters hear a tone (the engine takes any rate; 48 kHz like WebRTC)."""
    t = np.arange(int(seconds * WEBRTC_AUDIO_RATE)) / WEBRTC_AUDIO_RATE
    for k in range(len(room.characters)):
        room.open_input(f"tone{k}", k).write(
            (0.3 * np.sin(2 * np.pi * 180 * (k + 1) * t)).astype(np.float32), WEBRTC_AUDIO_RATE
        )


async def _until(predicate, what: str, timeout_s: float = 60.0) -> None:
    """Poll predicate() until it holds; the generous bound only turns a hang into a clear failure."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout_s} s")
        await asyncio.sleep(0.02)


def test_recording_is_complete_and_playable(loaded, tmp_path) -> None:
    path = tmp_path / "room.mp4"

    async def go() -> ContainerSink:
        room = _room(loaded)
        sink = ContainerSink(path, "mp4")
        await room.start()
        sink.start(room)
        _speak(room, 3.0)
        await _until(lambda: sink.frames_written >= 2 * VIDEO_FPS, "two seconds of recorded video")
        await sink.stop()
        await room.stop()
        return sink

    sink = asyncio.run(go())
    assert sink.frames_written >= 2 * VIDEO_FPS
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    with av.open(str(path)) as container:
        samples = sum(f.samples for f in container.decode(audio=0))
    assert len(frames) == sink.frames_written  # every frame, the last one included
    assert frames[0].shape[2] == 3 and frames[-1].std() > 0
    seconds = sink.frames_written / VIDEO_FPS
    assert (
        abs(samples / WEBRTC_AUDIO_RATE - seconds) < 0.2
    )  # the audio spans the video (AAC pads ~1k samples)


def test_mpegts_over_udp_decodes(loaded) -> None:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.setblocking(False)
    data = bytearray()

    async def go() -> ContainerSink:
        room = _room(loaded)
        sink = ContainerSink(f"udp://127.0.0.1:{receiver.getsockname()[1]}", "mpegts")
        await room.start()
        sink.start(room)
        _speak(room, 3.0)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while sink.frames_written < 2 * VIDEO_FPS:  # two seconds of video sent, read as it comes
            if loop.time() > deadline:
                raise AssertionError(f"only {sink.frames_written} frames sent within 60 s")
            try:
                data.extend(receiver.recv(65536))
            except BlockingIOError:
                await asyncio.sleep(0.005)
        await sink.stop()
        await room.stop()
        return sink

    try:
        sink = asyncio.run(go())
        while True:
            try:
                data.extend(receiver.recv(65536))
            except BlockingIOError:
                break
    finally:
        receiver.close()
    assert len(data) % 188 == 0 and data[0] == 0x47  # whole TS packets with their sync byte
    with av.open(io.BytesIO(bytes(data)), format="mpegts") as container:
        decoded = sum(1 for _ in container.decode(video=0))
    assert decoded >= sink.frames_written - 2  # loopback UDP loses nothing; the head may wait for a keyframe


@pytest.mark.parametrize(
    "url", ["udp://127.0.0.1", "http://127.0.0.1:5000", "udp://127.0.0.1:99999", "udp://:5000"]
)
def test_bad_mpegts_targets_are_refused(url) -> None:
    with pytest.raises(OutputSinkError, match="udp://"):
        parse_udp_url(url)


@pytest.mark.slow
def test_a_killed_recording_plays_to_within_a_second_of_the_kill(tmp_path) -> None:
    """SIGKILL while recording (no flush, no trailer): the MP4 plays up to at most 1 s before the kill.
    The recorder runs in a child (tests/recording_child.py) that prints its muxed frame count."""
    path, log = tmp_path / "killed.mp4", tmp_path / "child.log"
    kill_at = 2 * VIDEO_FPS  # two seconds in: several fragments and one keyframe interval written
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, str(REPO / "tests" / "recording_child.py"), str(path)]
    with log.open("w") as stderr:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env)
    watchdog = threading.Timer(60, proc.kill)  # a child that stops printing ends the loop below
    watchdog.start()
    written = 0
    try:
        for line in proc.stdout:
            written = int(line.split()[1])
            if written >= kill_at:
                break
    finally:
        proc.kill()  # SIGKILL: nothing of the recorder's own shutdown runs
        watchdog.cancel()
        proc.communicate()
    assert written >= kill_at, f"the child stopped at {written} frames: {log.read_text()[-2000:]}"
    playable = 0
    try:  # the fragment being written when the process died is cut short: decode up to it
        with av.open(str(path)) as container:
            for _ in container.decode(video=0):
                playable += 1
    except av.error.FFmpegError:
        pass
    assert playable >= written - VIDEO_FPS, f"{written} frames written, {playable} playable after SIGKILL"


def test_recording_to_a_missing_folder_is_refused(tmp_path) -> None:
    with pytest.raises(OutputSinkError, match="does not exist"):
        ContainerSink(tmp_path / "no" / "such" / "out.mp4")


def test_virtual_camera_gives_one_clear_line() -> None:
    try:
        sink = VirtualCameraSink(128, 128)
    except VirtualCameraError as exc:
        message = str(exc)
        assert message.startswith("no virtual camera available") or "pyvirtualcam" in message
        assert "\n" not in message
    else:  # a machine with v4l2loopback or OBS's camera: nothing to refuse
        sink.camera.close()
        pytest.skip("this machine has a virtual camera")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get_json(port: int, path: str) -> dict | None:
    """GET http://127.0.0.1:port/path as JSON; None while nothing answers there."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1) as r:
            return json.loads(r.read()) if r.status == 200 else None
    except OSError:
        return None


def _start_serve(args: list[str], tries: int = 3) -> tuple[subprocess.Popen, int]:
    """`bya serve --open ARGS` on a free port, once /health answers. The port is found by binding and
    closing a socket, so another process may take it first (`bya serve` needs a fixed --port to print its
    URLs): on that clear "address in use" failure, try another port."""
    for _ in range(tries):
        port = _free_port()
        cmd = [sys.executable, "-m", "realtime.cli", "serve", "--open", "--port", str(port), *args]
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while _get_json(port, "/health") is None:
            if proc.poll() is not None:
                stderr = proc.communicate()[1]
                if "in use" in stderr.lower():
                    break  # lost the race for the port
                pytest.fail(f"bya serve exited: {stderr}")
            if time.monotonic() > deadline:
                proc.kill()
                proc.communicate()
                pytest.fail("bya serve did not answer /health within 60 s")
            time.sleep(0.2)
        else:
            return proc, port
    pytest.fail(f"bya serve found its port taken {tries} times")


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_bya_serve_finishes_its_recording_on_a_signal(tmp_path, sig) -> None:
    torch.manual_seed(0)
    model = save_generator(Generator(GENERATOR_CONFIGS["tiny"]), tmp_path / "tiny.safetensors")
    out = tmp_path / "serve.mp4"
    args = ["--model", str(model), "--steps", "1", "--backend", "torch", "--characters", "2"]
    proc, port = _start_serve([*args, "--record", str(out)])
    try:
        deadline = time.monotonic() + 60
        while True:  # a second of video recorded, then the signal
            stats = _get_json(port, "/stats") or {}
            if sum(s["frames"] for s in stats.get("sinks", [])) >= VIDEO_FPS:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"the recording did not reach {VIDEO_FPS} frames within 60 s: {stats}")
            time.sleep(0.2)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    assert f"127.0.0.1:{port}/viewer" in stdout
    with av.open(str(out)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames >= VIDEO_FPS // 2


def test_bya_serve_refuses_an_open_public_server() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "realtime.cli", "serve", "--open", "--host", "0.0.0.0"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "loopback" in done.stderr


def test_bya_serve_virtual_camera_error_is_one_line(tmp_path) -> None:
    pytest.importorskip("pyvirtualcam")
    try:
        open_camera(128, 128).close()
        pytest.skip("this machine has a virtual camera")
    except VirtualCameraError:
        pass
    torch.manual_seed(0)
    model = save_generator(Generator(GENERATOR_CONFIGS["tiny"]), tmp_path / "tiny.safetensors")
    cmd = [sys.executable, "-m", "realtime.cli", "serve", "--open", "--port", str(_free_port())]
    cmd += ["--model", str(model), "--steps", "1", "--backend", "torch", "--virtual-camera"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("bya: error: no virtual camera available"), done.stderr
    assert "Traceback" not in done.stderr
