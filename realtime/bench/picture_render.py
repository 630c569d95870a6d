"""Picture renderer benchmark: ms per frame of realtime.scene.picture.render on one OpenCV thread.

Scenes are built from the photos bundled with scikit-image and matplotlib, with face landmarks measured
once by the face mesh (constants below, so the benchmark needs no mediapipe): 512x512 with two faces (the
astronaut twice, side by side) and 1280x720 with one face (Grace Hopper, scaled 1.2x). Every frame poses
every face (talking mouth, corners, brows, a blink now and then, small head motion), so each frame pays
for the full path. A baseline row times plain `picture.copy()` of the same canvas in the same run. Prints
a table and writes JSON naming the machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from realtime.bench.machine import PROVENANCE_KEY, command_line, provenance
from realtime.errors import BYAError
from realtime.scene.picture.render import PictureRenderer
from realtime.scene.picture.rig import FaceLandmarks, Rig

# face mesh (mediapipe 0.10.21, static mode, refined) on the original photos: points 61/291 corners,
# 13/14 inner lips, 0/17 outer lips, 152 chin, 468/473 irises; box = the mesh's extent
GRACE_HOPPER = {
    "box": [173.0, 132.3, 356.0, 333.6],
    "mouth_left": [232.4, 280.6],
    "mouth_right": [302.5, 277.1],
    "upper_lip": [267.7, 279.1],
    "lower_lip": [267.7, 279.1],
    "chin": [270.3, 333.6],
    "eyes": [[222.6, 191.3], [306.2, 187.5]],
    "outer_upper_lip": [267.7, 272.2],
    "outer_lower_lip": [268.0, 291.9],
    "eye_height": 11.4,
    "lip_gap": 0.1,
}
ASTRONAUT = {
    "box": [179.0, 71.2, 270.7, 177.4],
    "mouth_left": [201.8, 139.2],
    "mouth_right": [245.0, 141.0],
    "upper_lip": [223.5, 143.2],
    "lower_lip": [223.0, 150.1],
    "chin": [221.3, 177.4],
    "eyes": [[203.5, 101.1], [246.6, 103.5]],
    "outer_upper_lip": [223.6, 140.5],
    "outer_lower_lip": [222.7, 154.6],
    "eye_height": 6.9,
    "lip_gap": 6.9,
}


def landmarks(points: dict, scale: float = 1.0, dx: float = 0.0, dy: float = 0.0) -> FaceLandmarks:
    """FaceLandmarks from a table above, scaled then shifted (canvas px)."""

    def at(p: list) -> np.ndarray:
        return (np.asarray(p, np.float32) * scale + np.array([dx, dy], np.float32)).astype(np.float32)

    box = np.asarray(points["box"], np.float32) * scale + np.array([dx, dy, dx, dy], np.float32)
    return FaceLandmarks(
        box=box.astype(np.float32),
        eye_height=points["eye_height"] * scale,
        lip_gap=points["lip_gap"] * scale,
        source="mesh",
        **{k: at(v) for k, v in points.items() if k not in ("box", "eye_height", "lip_gap")},
    )


def scenes() -> dict[str, tuple[np.ndarray, list[FaceLandmarks]]]:
    """name -> (picture, faces) for each benchmarked layout."""
    import matplotlib
    from skimage import data

    astronaut = data.astronaut()
    hopper = cv2.imread(str(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"))
    hopper = cv2.cvtColor(hopper, cv2.COLOR_BGR2RGB)
    # 512x512, two people: the astronaut's middle 256 columns, twice
    half = astronaut[:, 96:352]
    two = np.ascontiguousarray(np.concatenate([half, half], axis=1))
    two_faces = [landmarks(ASTRONAUT, dx=-96.0), landmarks(ASTRONAUT, dx=160.0)]
    # 1280x720, one person: Grace Hopper 1.2x (614x720) in the middle of a canvas of her backdrop's colour
    big = cv2.resize(hopper, (614, 720), interpolation=cv2.INTER_LINEAR)
    wide = np.empty((720, 1280, 3), np.uint8)
    wide[:] = np.median(hopper[:, -8:].reshape(-1, 3), axis=0).astype(np.uint8)
    wide[:, 333 : 333 + 614] = big
    one_face = [landmarks(GRACE_HOPPER, scale=1.2, dx=333.0)]
    return {"512x512, 2 faces": (two, two_faces), "1280x720, 1 face": (wide, one_face)}


def talking(frame: int, face: int) -> Rig:
    """A busy, deterministic pose: speech-rate mouth, corners and brows, a blink every 40 frames, sway."""
    i, ph = float(frame), 1.7 * face
    return Rig(
        openness=0.5 + 0.5 * np.sin(0.7 * i + ph),
        width=0.5 + 0.3 * np.sin(0.31 * i + ph),
        brow=0.5 + 0.5 * np.sin(0.13 * i + ph),
        lid=0.0 if (frame + 7 * face) % 40 < 4 else 1.0,
        head_dx=0.02 * np.sin(0.05 * i + ph),
        head_dy=0.01 * np.sin(0.07 * i + ph),
        tilt=0.03 * np.sin(0.04 * i + ph),
    )


def _time_ms(step, frames: int) -> np.ndarray:
    times = np.empty(frames)
    for k in range(frames):
        start = time.perf_counter()
        step(k)
        times[k] = time.perf_counter() - start
    return times * 1e3


def run(frames: int, warmup: int) -> list[dict]:
    """One row per scene: render ms (mean, p50, p95), the copy baseline, their ratio, setup ms."""
    rows = []
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)  # the budget is one core for the renderer; put OpenCV's pool back afterwards
    try:
        for name, (picture, faces) in scenes().items():
            start = time.perf_counter()
            renderer = PictureRenderer(picture, faces)
            setup_ms = (time.perf_counter() - start) * 1e3
            out = np.empty_like(picture)
            poses = [[talking(k, f) for f in range(len(faces))] for k in range(max(frames, warmup))]

            def render(k: int, renderer=renderer, out=out, poses=poses) -> None:
                renderer.render(poses[k], out=out)

            _time_ms(render, warmup)
            ms = _time_ms(render, frames)
            copy_ms = _time_ms(lambda k, p=picture: p.copy(), frames)
            rows.append(
                {
                    "scene": name,
                    "height": picture.shape[0],
                    "width": picture.shape[1],
                    "faces": len(faces),
                    "crop_px": int(sum((b[2] - b[0]) * (b[3] - b[1]) for b in renderer.face_regions())),
                    "setup_ms": round(setup_ms, 1),
                    "ms_mean": round(float(ms.mean()), 3),
                    "ms_p50": round(float(np.median(ms)), 3),
                    "ms_p95": round(float(np.percentile(ms, 95)), 3),
                    "copy_ms_p50": round(float(np.median(copy_ms)), 4),
                    "ratio_to_copy": round(float(np.median(ms) / max(np.median(copy_ms), 1e-6)), 1),
                }
            )
    finally:
        cv2.setNumThreads(threads)
    return rows


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--frames", type=int, default=300, help="timed frames per scene")
    p.add_argument("--warmup", type=int, default=20, help="untimed frames first (caches, allocator)")
    p.add_argument("--out", default="docs/bench/picture_render_cpu.json")


def bench_command(args: argparse.Namespace) -> int:
    if args.frames < 1 or args.warmup < 0:
        raise BYAError(f"--frames must be >= 1 and --warmup >= 0, got {args.frames} and {args.warmup}")
    rows = run(args.frames, args.warmup)
    print("picture renderer, one OpenCV thread, every face posed every frame (ms per frame)")
    print(
        f"{'scene':>18}  {'crop px':>8}  {'mean':>6}  {'p50':>6}  {'p95':>6}  {'copy p50':>8}  {'x copy':>6}"
    )
    for r in rows:
        print(
            f"{r['scene']:>18}  {r['crop_px']:>8}  {r['ms_mean']:>6.2f}  {r['ms_p50']:>6.2f}  "
            f"{r['ms_p95']:>6.2f}  {r['copy_ms_p50']:>8.3f}  {r['ratio_to_copy']:>6.1f}"
        )
    result = {
        "frames": args.frames,
        "opencv_threads": 1,
        "rows": rows,
        PROVENANCE_KEY: provenance([], command_line(args, "bench picture"), threads=1),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m realtime.bench.picture_render", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    try:
        return bench_command(args)
    except BYAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
