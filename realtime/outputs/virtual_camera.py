"""Feed a live room's video to a virtual camera (pyvirtualcam) that OBS, Zoom or a browser can pick.

pyvirtualcam drives the OBS virtual camera on Windows/macOS and v4l2loopback on Linux. Where neither
exists (these machines cannot load v4l2loopback) opening it fails with one clear line instead of a
traceback. Sending a frame blocks until the camera's next slot, so it runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging

import numpy as np

from realtime.media import VIDEO_FPS
from realtime.outputs.recorder import OutputSinkError

log = logging.getLogger(__name__)


class VirtualCameraError(OutputSinkError):
    """No virtual camera device can be opened on this machine."""


def open_camera(width: int, height: int, fps: int = VIDEO_FPS, backend: str | None = None):
    """Open a pyvirtualcam Camera, turning its missing-package or missing-device errors into one line."""
    try:
        import pyvirtualcam
    except ImportError as exc:
        raise VirtualCameraError(
            "the virtual camera needs the pyvirtualcam package (pip install pyvirtualcam)"
        ) from exc
    try:
        return pyvirtualcam.Camera(width=width, height=height, fps=fps, backend=backend)
    except RuntimeError as exc:  # pyvirtualcam reports every missing backend/device as RuntimeError
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise VirtualCameraError(
            "no virtual camera available (Linux needs the v4l2loopback kernel module; Windows/macOS "
            f"need OBS's virtual camera installed): {detail}"
        ) from exc


class VirtualCameraSink:
    """Reads a room's video and sends every frame to a virtual camera."""

    def __init__(self, width: int, height: int, backend: str | None = None) -> None:
        self.camera = open_camera(width, height, backend=backend)  # fails here, before the room starts
        self.frames_sent = 0
        self._task: asyncio.Task | None = None
        self._subscription = None

    def start(self, room) -> None:
        self._subscription = room.subscribe(max_frames=VIDEO_FPS)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while (out := await self._subscription.next_video()) is not None:
            image = np.ascontiguousarray(out.image)
            if image.shape[:2] != (self.camera.height, self.camera.width):
                raise VirtualCameraError(
                    f"frames are {image.shape[1]}x{image.shape[0]}, the camera was opened at "
                    f"{self.camera.width}x{self.camera.height}"
                )
            await asyncio.to_thread(self.camera.send, image)
            self.frames_sent += 1

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._subscription is not None:
            self._subscription.close()
        self.camera.close()
