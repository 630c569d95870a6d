"""The evaluation harness (`bya eval`): scores any video of the world against its clip's ground truth.

`evaluate` reads every character's mouth with the mouth reader and feeds `distill.eval.metrics`: lip
sync (r, offset), binding (AUC own/other, wrong-person rate), router masks (IoU, flicker), and
fidelity (background PSNR/SSIM, identity colour drift). It returns one JSON-able report;
`save_plot` draws it. `add_eval_arguments` / `eval_command` are the CLI glue `realtime.cli` attaches.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

from distill.eval.metrics import (
    DEFAULT_MAX_LAG,
    background_fidelity,
    binding_auc,
    colour_drift,
    drift_summary,
    leak_ratio,
    lip_sync,
    mask_flicker,
    mask_iou,
    mouth_activity,
    mouth_motion,
    pooled_leak_ratio,
    wrong_person_rate,
)
from distill.eval.mouth_reader import VISIBLE_MIN, MouthReader, load_reader, mouth_visibility
from distill.eval.mouth_tracker import track_mouths
from distill.world.clip import Clip
from realtime.errors import OutputPathError, VideoInputError

REPORT_FORMAT = "bya-eval"
REPORT_VERSION = 1
DRIFT_UNIT = (
    "L2 in RGB/255 of the change since the character's first visible frame of (mean colour inside its own "
    "truth mask in the video - the same in the truth render); see distill.eval.metrics.colour_drift"
)


# ----------------------------------------------------------------------------- validation


def check_frames(frames: np.ndarray, clip: Clip) -> None:
    """Raise VideoInputError unless frames are (T, H, W, 3) uint8 with the clip's T, H and W."""
    if not isinstance(frames, np.ndarray):
        raise VideoInputError(f"frames must be a numpy array, got {type(frames).__name__}")
    if frames.dtype != np.uint8:
        raise VideoInputError(f"frames must be uint8 RGB, got dtype {frames.dtype}")
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise VideoInputError(f"frames must have shape (T, H, W, 3), got {frames.shape}")
    T, H, W = clip.render.frames.shape[:3]
    if frames.shape[0] != T:
        raise VideoInputError(f"video has {frames.shape[0]} frames, ground truth (seed {clip.seed}) has {T}")
    if frames.shape[1:3] != (H, W):
        raise VideoInputError(
            f"video frames are {frames.shape[2]}x{frames.shape[1]} (WxH), ground truth is {W}x{H}; "
            "render or resize the video at the clip's size"
        )


def check_masks(masks: np.ndarray, clip: Clip) -> np.ndarray:
    """Validate (T, N, H, W) masks against the clip and return them as float32 in [0, 1]."""
    if not isinstance(masks, np.ndarray):
        raise VideoInputError(f"masks must be a numpy array, got {type(masks).__name__}")
    expected = clip.render.masks.shape
    if masks.shape != expected:
        raise VideoInputError(
            f"masks have shape {masks.shape}, ground truth masks are (T, N, H, W) = {expected}"
        )
    if masks.dtype == np.uint8:  # stored x255 like the shards do
        return masks.astype(np.float32) / 255.0
    if masks.dtype == bool:
        return masks.astype(np.float32)
    if not np.issubdtype(masks.dtype, np.floating):
        raise VideoInputError(f"masks must be float in [0, 1], uint8 or bool, got dtype {masks.dtype}")
    m = masks.astype(np.float32)
    if not np.isfinite(m).all() or m.min() < 0.0 or m.max() > 1.0:
        raise VideoInputError(f"float masks must lie in [0, 1], got range [{np.nanmin(m)}, {np.nanmax(m)}]")
    return m


def jsonable(x: object) -> object:
    """Recursively turn numpy scalars/arrays into Python and nan/inf into None (strict JSON)."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, np.bool_ | bool):
        return bool(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, float | np.floating):
        return float(x) if math.isfinite(x) else None
    return x


def _nanmean(values: list) -> float:
    v = [x for x in values if x is not None and not math.isnan(x)]
    return float(np.mean(v)) if v else math.nan


# ----------------------------------------------------------------------------- evaluation


def evaluate(
    frames: np.ndarray,
    clip: Clip,
    masks: np.ndarray | None = None,
    reader: MouthReader | None = None,
    max_lag: int = DEFAULT_MAX_LAG,
    mouths: str = "truth",
    track_masks: np.ndarray | None = None,
    shown: np.ndarray | None = None,
) -> dict:
    """Score a (T, H, W, 3) uint8 video of `clip`'s scene; `masks` (T, N, H, W) are router masks.

    `shown` (T, N, H, W): what of each character this video shows, where the video's own layout is known
    and differs from the world's (a rig model moves the cast as drawn at rest: a character the world's
    drift later brings out from behind another stays behind it). A mouth is read only where it shows;
    by default where the world's render shows it.

    `mouths`: where mouths are read. "truth": the world's mouth boxes (a video that follows the ground
    truth's motion: renders, teacher-forced output); "tracked": each face followed through this video
    from its reference-frame position (distill.eval.mouth_tracker), for free-running generation, whose
    characters cannot know the world's random drift.

    `track_masks` (T, N, H, W): where a pose track given to the generator put each character (standing,
    face at rest); scored as the baseline of a router that only copies its input.

    Returns one JSON-able dict: aggregated figures at the top level, per-character figures under
    "characters", and the curves the plot needs under "series".
    """
    check_frames(frames, clip)
    pred_masks = None if masks is None else check_masks(masks, clip)
    reader = load_reader() if reader is None else reader
    r, d = clip.render, clip.dialogue
    N = clip.n_characters

    if mouths not in ("truth", "tracked"):
        raise ValueError(f"mouths must be 'truth' or 'tracked', got {mouths!r}")
    boxes = (
        r.mouth_boxes
        if mouths == "truth"
        else track_mouths(frames, r.frames[0], r.mouth_boxes[0], r.masks[0])
    )
    read = reader.read(frames, boxes)  # (N, T)
    if shown is None:
        visible = mouth_visibility(r.masks, r.mouth_boxes) >= VISIBLE_MIN  # occluded mouths carry no signal
    else:
        visible = mouth_visibility(shown, boxes) >= VISIBLE_MIN
    sync = lip_sync(read, d.openness, max_lag=max_lag, valid=visible)
    motion = mouth_motion(read, d.openness, valid=visible)
    activity = mouth_activity(read)
    binding = binding_auc(activity, d.active, valid=visible)
    leaks = leak_ratio(activity, d.active, valid=visible)
    wrong, solo = wrong_person_rate(activity, d.active, valid=visible)
    fidelity = background_fidelity(frames, r.background, r.masks)
    colour_error, drift = colour_drift(frames, r.frames, r.masks)  # (T, N) each

    mask_report = None
    if pred_masks is not None:
        hard, soft = mask_iou(pred_masks, r.masks)  # (T, N)
        flick, flick_truth = mask_flicker(pred_masks), mask_flicker(r.masks)
        mask_report = {
            "iou_mean": float(hard.mean()),
            "soft_iou_mean": float(soft.mean()),
            "flicker_mean": float(flick.mean()),
            "truth_flicker_mean": float(flick_truth.mean()),
            "iou_min_frame": float(hard.mean(axis=1).min()),
            # baseline: the reference masks held still, what a router blind to all motion scores
            "reference_held_iou_mean": float(
                mask_iou(np.repeat(r.masks[:1], len(r.masks), 0), r.masks)[0].mean()
            ),
        }
        if track_masks is not None:
            mask_report["track_iou_mean"] = float(mask_iou(check_masks(track_masks, clip), r.masks)[0].mean())

    visible_any = ~np.all(np.isnan(colour_error), axis=0)
    characters = []
    for i in range(N):
        s, b = sync["characters"][i], binding[i]
        c = {
            "index": i,
            "lip_sync_r": s["r"],
            "offset_frames": s["offset"],
            "r_at_offset": s["r_at_offset"],
            "lip_sync_reason": s["reason"],
            "mouth_motion": motion[i],
            "visible_frames": s["valid_frames"],
            "speaking_frames": int(d.active[i].sum()),
            **b,
            "leak_ratio": leaks[i],
            "colour_drift": drift_summary(drift[:, i]),
            "colour_error_mean": float(np.nanmean(colour_error[:, i])) if visible_any[i] else None,
        }
        if pred_masks is not None:
            c["mask_iou"] = float(hard[:, i].mean())
            c["mask_soft_iou"] = float(soft[:, i].mean())
            c["mask_flicker"] = float(flick[i])
        characters.append(c)

    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # frames where nobody is visible average to nan
        all_drift = drift_summary(np.nanmean(drift, axis=1))
        all_error = float(np.nanmean(colour_error)) if visible_any.any() else None
    report = {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "clip": {
            "seed": clip.seed,
            "n_characters": N,
            "n_frames": clip.n_frames,
            "size": clip.size,
            "fps": d.fps,
        },
        "reader": {"n_parameters": reader.n_parameters(), "config": reader.cfg.__dict__},
        "lip_sync": {
            "r_mean": sync["r_mean"],
            "offset_frames": sync["offset"],
            "offset_ms": None if sync["offset"] is None else sync["offset"] * 1000.0 / d.fps,
            "r_at_offset": sync["r_at_offset"],
            "mouth_motion_mean": _nanmean(motion),
            "max_lag_frames": max_lag,
            "sign": "positive offset = video lags audio",
            "mouth_boxes": mouths,
        },
        "binding": {
            "auc_own_mean": _nanmean([b["auc_own"] for b in binding]),
            "auc_other_mean": _nanmean([b["auc_other"] for b in binding]),
            "leak_ratio_mean": _nanmean(leaks),
            "leak_ratio_pooled": pooled_leak_ratio(activity, d.active, valid=visible),
            "wrong_person_rate": wrong,
            "single_speaker_frames": solo,
        },
        "masks": mask_report,
        "background": {k: v for k, v in fidelity.items() if not k.endswith("per_frame")},
        "colour_drift": {"unit": DRIFT_UNIT, **all_drift, "colour_error_mean": all_error},
        "characters": characters,
        "series": {
            "openness_read": read,
            "colour_drift": drift.T,
            "background_psnr_db": fidelity["psnr_db_per_frame"],
            "mask_iou": None if pred_masks is None else hard.T,
        },
    }
    return jsonable(report)


# ----------------------------------------------------------------------------- plot


def save_plot(report: dict, clip: Clip, path: str | os.PathLike, masks: np.ndarray | None = None) -> Path:
    """PNG: per character true vs read openness over speech activity, masks at a few frames, drift."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    N, T, fps = clip.n_characters, clip.n_frames, clip.dialogue.fps
    t = np.arange(T) / fps
    read = np.asarray(report["series"]["openness_read"], dtype=float)
    m = clip.render.masks if masks is None else masks
    shown = np.linspace(0, T - 1, 5).round().astype(int)
    fig = plt.figure(figsize=(11, 2.0 * N + 4.4), constrained_layout=True)
    grid = fig.add_gridspec(N + 2, len(shown))
    for i in range(N):
        ax = fig.add_subplot(grid[i, :])
        ax.fill_between(t, 0, clip.dialogue.active[i], step="mid", color="0.88", label="speaking")
        ax.plot(t, clip.dialogue.openness[i], color="k", lw=1.2, label="true openness")
        ax.plot(t, read[i], color="tab:red", lw=1.0, label="read openness")
        c = report["characters"][i]
        r = c["lip_sync_r"]
        ax.set_title(
            f"character {i}: r = {'n/a' if r is None else f'{r:.3f}'}, offset {c['offset_frames']} frames, "
            f"AUC own {_fmt(c['auc_own'])} / other {_fmt(c['auc_other'])}",
            fontsize=9,
            loc="left",
        )
        ax.set_ylim(-0.05, 1.05)
        ax.set_xlim(0, T / fps)
        if i == 0:
            ax.legend(loc="upper right", fontsize=7, ncol=3)
    colours = np.array([[0.9, 0.2, 0.2], [0.2, 0.5, 0.9], [0.2, 0.8, 0.3], [0.9, 0.7, 0.1]])
    for j, f in enumerate(shown):
        ax = fig.add_subplot(grid[N, j])
        overlay = np.clip(np.einsum("nhw,nc->hwc", np.asarray(m[f], float), colours[:N]), 0, 1)
        ax.imshow(0.5 * clip.render.frames[f] / 255.0 + 0.5 * overlay)
        ax.set_title(f"masks, frame {f}", fontsize=8)
        ax.axis("off")
    ax = fig.add_subplot(grid[N + 1, :])
    drift = np.asarray(
        [[np.nan if v is None else v for v in row] for row in report["series"]["colour_drift"]]
    )
    for i in range(N):
        ax.plot(t, drift[i], color=colours[i], label=f"character {i}")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("colour drift (RGB/255)")
    ax.legend(fontsize=7)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=90)
    except OSError as exc:
        raise OutputPathError(f"cannot write plot {path}: {exc}") from exc
    finally:
        plt.close(fig)
    return path


def _fmt(x: float | None) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{x:.2f}"


# ----------------------------------------------------------------------------- CLI


def read_video(path: str | os.PathLike) -> np.ndarray:
    """Decode every frame of a PyAV-readable video to (T, H, W, 3) uint8 RGB, or raise VideoInputError."""
    import av

    path = Path(path)
    if not path.is_file():
        raise VideoInputError(f"video file not found: {path}")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoInputError(f"{path} has no video stream")
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    except av.FFmpegError as exc:
        raise VideoInputError(f"cannot decode video {path}: {exc}") from exc
    if not frames:
        raise VideoInputError(f"{path} holds no decodable video frames")
    return np.stack(frames)


def load_masks(path: str | os.PathLike) -> np.ndarray:
    """Load router masks (T, N, H, W) from a .npy file, or raise VideoInputError."""
    path = Path(path)
    if not path.is_file():
        raise VideoInputError(f"masks file not found: {path}")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise VideoInputError(f"{path}: not a readable .npy mask array ({exc})") from exc


def write_json(report: dict, path: str | os.PathLike) -> Path:
    """Write the report atomically (temporary file + rename); unwritable -> OutputPathError."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "w") as f:
            json.dump(report, f, indent=1, allow_nan=False)
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputPathError(f"cannot write report {path}: {exc}") from exc
    return path


def add_eval_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Attach `bya eval`'s arguments to a (sub)parser; pair it with `eval_command`."""
    parser.add_argument(
        "--truth", required=True, help="ground-truth clip (.npz written by distill.data.shards.save_clip)"
    )
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--video", help="video to score (mp4 or anything PyAV reads), at the clip's size and length"
    )
    src.add_argument("--truth-only", action="store_true", help="score the clip's own render (sanity check)")
    parser.add_argument("--masks", help="router masks as .npy, shape (T, N, H, W), float in [0, 1]")
    parser.add_argument("--out", help="write the JSON report here (default: print it)")
    parser.add_argument("--plot", help="write a PNG plot here")
    parser.add_argument("--reader", help="mouth reader checkpoint (default: the shipped distill/weights)")
    parser.add_argument("--max-lag", type=int, default=DEFAULT_MAX_LAG, help="offset search range, frames")
    parser.add_argument(
        "--mouths",
        choices=("truth", "tracked"),
        default="truth",
        help="read mouths at the world's boxes (truth) or where each face is in the video (tracked: "
        "for free-running generated video)",
    )
    return parser


def summary_lines(report: dict) -> list[str]:
    """A few human-readable lines of the headline figures."""
    ls, b, bg = report["lip_sync"], report["binding"], report["background"]
    lines = [
        f"lip sync: r {_fmt(ls['r_mean'])}, offset {ls['offset_frames']} frames ({ls['sign']}), "
        f"mouth motion {_fmt(ls.get('mouth_motion_mean'))} of the truth's",
        f"binding: AUC own {_fmt(b['auc_own_mean'])}, other {_fmt(b['auc_other_mean'])}, "
        f"wrong person {_fmt(b['wrong_person_rate'])} of {b['single_speaker_frames']} single-speaker frames",
        f"background: PSNR {_fmt(bg['psnr_db'])} dB, SSIM {_fmt(bg['ssim'])}; "
        f"colour drift mean {_fmt(report['colour_drift']['mean'])}",
    ]
    if report["masks"] is not None:
        mk = report["masks"]
        lines.append(
            f"masks: IoU {_fmt(mk['iou_mean'])}, soft {_fmt(mk['soft_iou_mean'])}, flicker {mk['flicker_mean']:.4f}"
        )
    return lines


def eval_command(args: argparse.Namespace) -> int:
    """Run `bya eval` from parsed arguments; returns the exit status (errors raise BYAError subclasses)."""
    from distill.data.shards import load_clip

    clip = load_clip(args.truth)
    if args.truth_only:
        frames = clip.render.frames
        masks = load_masks(args.masks) if args.masks else clip.render.masks
    else:
        frames = read_video(args.video)
        masks = load_masks(args.masks) if args.masks else None
    reader = load_reader(args.reader) if args.reader else load_reader()
    report = evaluate(frames, clip, masks=masks, reader=reader, max_lag=args.max_lag, mouths=args.mouths)
    if args.out:
        write_json(report, args.out)
    else:
        print(json.dumps({k: v for k, v in report.items() if k != "series"}, indent=1))
    if args.plot:
        save_plot(report, clip, args.plot, masks=None if masks is None else check_masks(masks, clip))
    for line in summary_lines(report):
        print(line)
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m distill.eval.harness ...`: the same as `bya eval ...`."""
    parser = add_eval_arguments(argparse.ArgumentParser(prog="bya eval", description=__doc__.splitlines()[0]))
    return eval_command(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
