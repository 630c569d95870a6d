"""A child process for tests/test_outputs.py: records a live room to an MP4 until it is killed.

Run as `python tests/recording_child.py OUT.mp4`: a 2-character room on the tiny generator speaks two
tones into a ContainerSink, and the child prints `frames N` each time the sink has muxed more frames, so
the parent can SIGKILL it at a known point and see how much of the recording survived.
"""

from __future__ import annotations

import asyncio
import sys

import numpy as np
import torch

from realtime.engine.room import Room
from realtime.media import WEBRTC_AUDIO_RATE
from realtime.model.autoencoder import AUTOENCODER_CONFIGS, FrameAutoencoder
from realtime.model.config import GENERATOR_CONFIGS
from realtime.model.default_model import LoadedModel
from realtime.model.generator import Generator
from realtime.outputs.recorder import ContainerSink
from realtime.scene.scenes import world_scene

SPEECH_S = 8.0  # one write takes at most 10 s; after it the room records silence, which is as good


async def record(path: str) -> None:
    torch.manual_seed(0)
    gen = Generator(GENERATOR_CONFIGS["tiny"]).eval()
    loaded = LoadedModel(gen, FrameAutoencoder(AUTOENCODER_CONFIGS["ae-s"]).eval(), 1, None)
    room = Room(loaded, world_scene(2, seed=1, size=gen.cfg.frame_size), steps=1, seed=0)
    sink = ContainerSink(path, "mp4")
    await room.start()
    sink.start(room)
    t = np.arange(int(SPEECH_S * WEBRTC_AUDIO_RATE)) / WEBRTC_AUDIO_RATE
    for k in range(len(room.characters)):
        tone = (0.3 * np.sin(2 * np.pi * 180 * (k + 1) * t)).astype(np.float32)
        room.open_input(f"tone{k}", k).write(tone, WEBRTC_AUDIO_RATE)
    reported = 0
    while True:  # report every new frame; the parent decides when to kill
        if sink.frames_written != reported:
            reported = sink.frames_written
            print(f"frames {reported}", flush=True)
        await asyncio.sleep(0.005)


if __name__ == "__main__":
    asyncio.run(record(sys.argv[1]))
