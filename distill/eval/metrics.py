"""Pure numpy metrics of the evaluation harness: lip sync, binding, router masks and fidelity.

Every function takes arrays (openness curves, activity flags, masks, frames) and returns numbers or
small JSON-able dicts; nothing here knows about clips, files or the mouth reader. `distill.eval.harness`
feeds them and assembles the report, so each metric can be tested against hand-made examples.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import correlate1d, maximum_filter1d, uniform_filter1d

DEFAULT_MAX_LAG = 8  # frames (320 ms at 25 fps); wider than the ITU-R BT.1359 detectability window
ACTIVITY_WINDOW = 5  # frames (200 ms): bridges the closed frames between syllables, barely smears turns
BINDING_GUARD = ACTIVITY_WINDOW // 2  # frames next to a character's own speech that no negative class uses
PSNR_CAP_DB = 100.0  # dB; stands in for +inf (identical images) so reports stay valid JSON
BACKGROUND_MASK_MAX = 0.05  # a pixel is background where no character's soft mask exceeds this
SSIM_SIGMA = 1.5  # px; the Gaussian window of the original SSIM paper (Wang et al. 2004)
SSIM_RADIUS = 5  # px; an 11x11 window, 3.3 sigma, as in that paper
SSIM_K1, SSIM_K2 = 0.01, 0.03  # stabilising constants of the SSIM paper, relative to the dynamic range


# ----------------------------------------------------------------------------- lip sync


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two equal-length 1-D series; nan when either is constant or empty."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"pearson needs equal lengths, got {a.size} and {b.size}")
    if a.size < 2:
        return math.nan
    a = a - a.mean()
    b = b - b.mean()
    den = math.sqrt(float(a @ a) * float(b @ b))
    if den < 1e-12:
        return math.nan
    return float(a @ b) / den


def _lag_pair(pred: np.ndarray, true: np.ndarray, lag: int) -> tuple[np.ndarray, np.ndarray]:
    """Align pred (video) and true (audio) for a lag; positive lag = video lags audio: pred[t+lag] ~ true[t]."""
    T = pred.shape[-1]
    if lag >= 0:
        return pred[..., lag:], true[..., : T - lag]
    return pred[..., : T + lag], true[..., -lag:]


def lagged_correlations(pred: np.ndarray, true: np.ndarray, max_lag: int = DEFAULT_MAX_LAG) -> np.ndarray:
    """Pearson r for every lag in [-max_lag, max_lag] (index max_lag is lag 0); nan where undefined."""
    pred = np.asarray(pred, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    if pred.shape != true.shape or pred.ndim != 1:
        raise ValueError(f"lagged_correlations needs two equal 1-D series, got {pred.shape} and {true.shape}")
    if max_lag < 0 or max_lag >= pred.size - 1:
        raise ValueError(f"max_lag must be in [0, {pred.size - 2}] for {pred.size} frames, got {max_lag}")
    return np.array([pearson(*_lag_pair(pred, true, lag)) for lag in range(-max_lag, max_lag + 1)])


def best_lag(rs: np.ndarray) -> tuple[int, float]:
    """(lag, r) maximising r over a lagged_correlations curve; ties go to the lag nearest zero."""
    max_lag = (len(rs) - 1) // 2
    if np.all(np.isnan(rs)):
        return 0, math.nan
    lags = np.arange(-max_lag, max_lag + 1)
    best = np.nanmax(rs)
    # Nearest-to-zero among (numerically) equal maxima, so a flat curve does not report a spurious offset.
    candidates = lags[np.isclose(rs, best, rtol=0, atol=1e-9)]
    lag = int(candidates[np.argmin(np.abs(candidates))])
    return lag, float(rs[lag + max_lag])


def lip_sync(
    pred: np.ndarray, true: np.ndarray, max_lag: int = DEFAULT_MAX_LAG, valid: np.ndarray | None = None
) -> dict:
    """Per-character and pooled lip-sync figures from read (N, T) vs true (N, T) mouth openness.

    `valid` (N, T) bool marks frames to score (e.g. mouth visible); others are dropped from lag-0 r.
    The pooled offset maximises the mean over characters of r(lag), so one silent character cannot
    decide it. Returns {"characters": [{r, offset, r_at_offset, reason}], "r_mean", "offset"}.
    """
    pred = np.asarray(pred, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    if pred.shape != true.shape or pred.ndim != 2:
        raise ValueError(f"lip_sync needs two (N, T) arrays of one shape, got {pred.shape} and {true.shape}")
    valid = np.ones(pred.shape, bool) if valid is None else np.asarray(valid, bool)
    per, curves = [], []
    for i in range(pred.shape[0]):
        ok = valid[i]
        r0 = pearson(pred[i, ok], true[i, ok]) if ok.sum() >= 2 else math.nan
        rs = lagged_correlations(pred[i], true[i], max_lag)
        lag, r_lag = best_lag(rs)
        reason = None
        if np.ptp(true[i]) < 1e-9:
            reason = "ground-truth openness is constant (the character never speaks)"
        elif np.ptp(pred[i]) < 1e-9:
            reason = "read openness is constant (the mouth never moves in the video)"
        elif ok.sum() < 2:
            reason = "mouth hidden in every frame"
        per.append(
            {
                "r": r0,
                "offset": lag if reason is None else None,
                "r_at_offset": r_lag,
                "valid_frames": int(ok.sum()),
                "reason": reason,
            }
        )
        curves.append(rs)
    curves_arr = np.array(curves)
    scored = ~np.all(np.isnan(curves_arr), axis=1)
    if scored.any():
        pooled = np.nanmean(curves_arr[scored], axis=0)
        offset, r_off = best_lag(pooled)
    else:
        offset, r_off = None, math.nan
    r_values = [p["r"] for p in per if not math.isnan(p["r"])]
    return {
        "characters": per,
        "r_mean": float(np.mean(r_values)) if r_values else math.nan,
        "offset": offset,
        "r_at_offset": r_off,
        "max_lag": max_lag,
    }


def mouth_motion(pred: np.ndarray, true: np.ndarray, valid: np.ndarray | None = None) -> list[float | None]:
    """Per character, how far the read mouth moves against how far the true one does: std(read) /
    std(true) over the valid frames (None where the true mouth never moves there).

    Correlation is blind to scale: a mouth that only twitches in time with the speech scores a high r
    while nobody watching sees it talk. This ratio says how much of the motion is there (about 1 for
    the ground truth read back, near 0 for a mouth that stays shut).
    """
    pred = np.asarray(pred, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    if pred.shape != true.shape or pred.ndim != 2:
        raise ValueError(
            f"mouth_motion needs two (N, T) arrays of one shape, got {pred.shape} and {true.shape}"
        )
    ok = _valid_flags(valid, pred.shape, "mouth_motion") & np.isfinite(pred) & np.isfinite(true)
    out: list[float | None] = []
    for i in range(pred.shape[0]):
        t, p = true[i][ok[i]], pred[i][ok[i]]
        out.append(float(p.std() / t.std()) if len(t) > 1 and t.std() > 1e-6 else None)
    return out


# ----------------------------------------------------------------------------- binding


def mouth_activity(openness: np.ndarray, window: int = ACTIVITY_WINDOW) -> np.ndarray:
    """(N, T) mouth-activity score: local mean openness plus local std over a centred window.

    The mean catches a mouth held open, the std a mouth that moves; a window of about a syllable
    bridges the closed frames between words so a speaking character stays "active" through them.
    """
    x = np.asarray(openness, dtype=np.float64)
    mean = uniform_filter1d(x, window, axis=-1, mode="nearest")
    sq = uniform_filter1d(x * x, window, axis=-1, mode="nearest")
    std = np.sqrt(np.maximum(sq - mean * mean, 0.0))
    return mean + std


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> tuple[float, str | None]:
    """Rank-based ROC AUC (Mann-Whitney U with mid-ranks for ties) and why it is nan, if it is.

    AUC = P(score of a random positive > score of a random negative) + 0.5 P(tie).
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=bool).ravel()
    if s.shape != y.shape:
        raise ValueError(f"roc_auc needs as many labels as scores, got {y.size} and {s.size}")
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0:
        return math.nan, "no positive frames"
    if n_neg == 0:
        return math.nan, "no negative frames"
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(s.size, dtype=np.float64)
    sorted_s = s[order]
    # Mid-ranks: every member of a run of equal scores gets the mean of the ranks the run spans.
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_s)) + 1]
    ends = np.r_[starts[1:], s.size]
    mid = (starts + ends + 1) / 2.0  # 1-based ranks
    ranks[order] = np.repeat(mid, ends - starts)
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg)), None


def _valid_flags(valid: np.ndarray | None, shape: tuple[int, ...], who: str) -> np.ndarray:
    if valid is None:
        return np.ones(shape, dtype=bool)
    valid = np.asarray(valid, dtype=bool)
    if valid.shape != shape:
        raise ValueError(f"{who} needs (N, T) valid flags of shape {shape}, got {valid.shape}")
    return valid


def _binding_frames(
    activity: np.ndarray, active: np.ndarray, guard: int, valid: np.ndarray | None, what: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Checked (N, T) activity, speech flags and `valid`, and the flags widened by `guard` frames."""
    activity = np.asarray(activity, dtype=np.float64)
    active = np.asarray(active, dtype=bool)
    if activity.shape != active.shape or activity.ndim != 2:
        raise ValueError(f"{what} needs (N, T) activity and flags, got {activity.shape}, {active.shape}")
    valid = _valid_flags(valid, active.shape, what)
    near = maximum_filter1d(active.astype(np.uint8), 2 * guard + 1, axis=1).astype(bool) if guard else active
    return activity, active, valid, near


def binding_auc(
    activity: np.ndarray, active: np.ndarray, guard: int = BINDING_GUARD, valid: np.ndarray | None = None
) -> list[dict]:
    """Per character: AUC of its mouth activity for its OWN speech and for OTHER characters' speech.

    own:   positives = frames where it speaks; negatives = frames where it is silent.
    other: positives = frames where it is silent and someone else speaks; negatives = frames where
           nobody speaks. A correctly bound mouth is as still while others talk as in silence
           (~0.5); a mouth driven by another character's audio moves while they talk (-> 1).
    Silent frames within `guard` frames of its own speech are left out of both tests: the activity
    window smears speech into them, which would penalise a perfect render at every turn boundary.
    `valid` (N, T) bool drops a character's frames where its mouth cannot be read (occluded by another
    character standing in front: the reader would read the front character's mouth).
    """
    activity, active, valid, near = _binding_frames(activity, active, guard, valid, "binding_auc")
    n = active.shape[0]
    out = []
    for i in range(n):
        used = (active[i] | ~near[i]) & valid[i]  # speaking frames, silent frames clear of the guard band
        own, own_reason = roc_auc(activity[i][used], active[i][used])
        if n < 2:
            other, other_reason = math.nan, "no other character in the scene"
        else:
            others = np.delete(active, i, axis=0).any(axis=0)
            silent = ~near[i] & valid[i]
            other, other_reason = roc_auc(activity[i][silent], others[silent])
            if other_reason is not None:
                other_reason = {
                    "no positive frames": "other characters never speak while this one is silent",
                    "no negative frames": "no frame where everybody is silent",
                }[other_reason]
        out.append(
            {
                "auc_own": own,
                "auc_own_reason": own_reason,
                "auc_other": other,
                "auc_other_reason": other_reason,
            }
        )
    return out


def _leak_parts(
    activity: np.ndarray, active: np.ndarray, guard: int, valid: np.ndarray | None
) -> list[tuple[float, float] | None]:
    """Per character: (mean activity listening - quiet, mean speaking - quiet), None without the frames."""
    activity, active, valid, near = _binding_frames(activity, active, guard, valid, "leak_ratio")
    n = active.shape[0]
    out: list[tuple[float, float] | None] = []
    for i in range(n):
        others = np.delete(active, i, axis=0).any(axis=0) if n > 1 else np.zeros_like(active[i])
        silent = ~near[i] & valid[i]
        quiet, listening, speaking = silent & ~others, silent & others, active[i] & valid[i]
        if n < 2 or not quiet.any() or not listening.any() or not speaking.any():
            out.append(None)
            continue
        base = activity[i][quiet].mean()
        out.append((activity[i][listening].mean() - base, activity[i][speaking].mean() - base))
    return out


def leak_ratio(
    activity: np.ndarray, active: np.ndarray, guard: int = BINDING_GUARD, valid: np.ndarray | None = None
) -> list[float]:
    """Per character: how much its mouth moves while others speak, as a share of how much it moves speaking.

    (mean activity while silent and someone else speaks - mean while nobody speaks) / (mean while it
    speaks - mean while nobody speaks). 0: a still listener; 1: it moves for others' voices as much as for
    its own. AUC other ranks frames, so a listener whose mouth shifts by a hair whenever anyone talks
    scores near 1 there; this says how big the shift is. nan without the frames to measure it. Frames are
    chosen as in `binding_auc` (guard band, `valid`).
    """
    return [
        math.nan if p is None or p[1] <= 1e-6 else float(p[0] / p[1])
        for p in _leak_parts(activity, active, guard, valid)
    ]


def pooled_leak_ratio(
    activity: np.ndarray, active: np.ndarray, guard: int = BINDING_GUARD, valid: np.ndarray | None = None
) -> float:
    """One clip's leak: the characters' listening motion summed over their speaking motion summed.

    A character that barely moves when it speaks makes its own ratio explode; pooled, it weighs what it moves.
    """
    parts = [p for p in _leak_parts(activity, active, guard, valid) if p is not None]
    amplitude = sum(p[1] for p in parts)
    return float(sum(p[0] for p in parts) / amplitude) if parts and amplitude > 1e-6 else math.nan


def wrong_person_rate(
    activity: np.ndarray, active: np.ndarray, valid: np.ndarray | None = None
) -> tuple[float, int]:
    """Of frames where exactly one character speaks, the fraction whose most mouth-active one is not it.

    A tie for the top score counts as wrong: a viewer cannot tell who speaks. Returns (rate, n_frames);
    rate is nan with no such frames or fewer than two characters. With `valid` (N, T), a frame counts
    only if the speaker's mouth can be read, and occluded mouths do not compete (an occluded mouth's
    reading belongs to whoever stands in front of it).
    """
    activity = np.asarray(activity, dtype=np.float64)
    active = np.asarray(active, dtype=bool)
    if activity.shape != active.shape or activity.ndim != 2:
        raise ValueError(f"wrong_person_rate needs (N, T) arrays, got {activity.shape}, {active.shape}")
    valid = _valid_flags(valid, active.shape, "wrong_person_rate")
    if active.shape[0] < 2:
        return math.nan, 0
    solo = (active.sum(axis=0) == 1) & (active & valid).any(axis=0)
    if not solo.any():
        return math.nan, 0
    a = np.where(valid, activity, -np.inf)[:, solo]
    speaker = np.argmax(active[:, solo], axis=0)
    top = a.max(axis=0)
    unique_top = (np.isclose(a, top, rtol=0, atol=1e-9)).sum(axis=0) == 1
    right = (np.argmax(a, axis=0) == speaker) & unique_top
    return float(1.0 - right.mean()), int(solo.sum())


# ----------------------------------------------------------------------------- router masks


def mask_iou(pred: np.ndarray, true: np.ndarray, threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame, per-character (hard IoU at `threshold`, soft IoU = sum min / sum max), each (T, N).

    Two empty masks agree perfectly (IoU 1): a character that is off screen and predicted absent.
    """
    pred = np.asarray(pred, dtype=np.float32)
    true = np.asarray(true, dtype=np.float32)
    if pred.shape != true.shape or pred.ndim != 4:
        raise ValueError(
            f"mask_iou needs two (T, N, H, W) arrays of one shape, got {pred.shape}, {true.shape}"
        )
    p, t = pred > threshold, true > threshold
    inter = (p & t).sum(axis=(2, 3), dtype=np.float64)
    union = (p | t).sum(axis=(2, 3), dtype=np.float64)
    hard = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    smin = np.minimum(pred, true).sum(axis=(2, 3), dtype=np.float64)
    smax = np.maximum(pred, true).sum(axis=(2, 3), dtype=np.float64)
    soft = np.where(smax > 1e-9, smin / np.maximum(smax, 1e-12), 1.0)
    return hard, soft


def mask_flicker(masks: np.ndarray) -> np.ndarray:
    """(N,) temporal flicker: mean over frames and pixels of |m_t - m_{t-1}| per character."""
    m = np.asarray(masks, dtype=np.float32)
    if m.ndim != 4:
        raise ValueError(f"mask_flicker needs (T, N, H, W) masks, got {m.shape}")
    if m.shape[0] < 2:
        return np.zeros(m.shape[1])
    return np.abs(np.diff(m, axis=0)).mean(axis=(0, 2, 3), dtype=np.float64)


# ----------------------------------------------------------------------------- fidelity


def background_mask(masks: np.ndarray, max_value: float = BACKGROUND_MASK_MAX) -> np.ndarray:
    """(T, H, W) bool: pixels where no character's soft mask exceeds max_value."""
    return ~(np.asarray(masks) > max_value).any(axis=1)


def psnr(a: np.ndarray, b: np.ndarray, where: np.ndarray | None = None, cap_db: float = PSNR_CAP_DB) -> float:
    """PSNR in dB of two uint8-range images over pixels `where` (H, W); identical -> cap_db."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"psnr needs images of one shape, got {a.shape} and {b.shape}")
    diff2 = (a - b) ** 2
    if where is not None:
        diff2 = diff2[np.asarray(where, bool)]
    if diff2.size == 0:
        return math.nan
    mse = float(diff2.mean())
    if mse <= 0.0:
        return cap_db
    return min(cap_db, 10.0 * math.log10(255.0**2 / mse))


def _gaussian_kernel(sigma: float = SSIM_SIGMA, radius: int = SSIM_RADIUS) -> np.ndarray:
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def _blur(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Separable Gaussian over the two spatial axes (0, 1) of an (H, W[, C]) image, edges reflected."""
    return correlate1d(correlate1d(x, k, axis=0, mode="reflect"), k, axis=1, mode="reflect")


def ssim_map(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> np.ndarray:
    """Per-pixel SSIM (Gaussian-windowed, per channel, then channel mean) of two (H, W[, C]) images."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"ssim needs images of one shape, got {a.shape} and {b.shape}")
    k = _gaussian_kernel()
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    mu_a, mu_b = _blur(a, k), _blur(b, k)
    var_a = _blur(a * a, k) - mu_a**2
    var_b = _blur(b * b, k) - mu_b**2
    cov = _blur(a * b, k) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.mean(axis=-1) if s.ndim == 3 else s


def ssim(a: np.ndarray, b: np.ndarray, where: np.ndarray | None = None) -> float:
    """Mean SSIM of two images, over pixels `where` (H, W) if given; identical images give 1."""
    m = ssim_map(a, b)
    if where is not None:
        m = m[np.asarray(where, bool)]
    return float(m.mean()) if m.size else math.nan


def background_fidelity(frames: np.ndarray, background: np.ndarray, masks: np.ndarray) -> dict:
    """PSNR/SSIM per frame of the video's background against the reference background.

    Pixels under any character (truth mask > BACKGROUND_MASK_MAX) are replaced by the reference in
    both images before SSIM, so the Gaussian window never sees a character; both scores then
    average only background pixels. Returns per-frame lists and their means.
    """
    frames = np.asarray(frames)
    bg = np.asarray(background)
    where = background_mask(masks)
    psnrs, ssims = [], []
    for t in range(frames.shape[0]):
        w = where[t]
        f = np.where(w[..., None], frames[t], bg)
        psnrs.append(psnr(f, bg, w))
        ssims.append(ssim(f, bg, w))
    return {
        "psnr_db": float(np.nanmean(psnrs)) if psnrs else math.nan,
        "ssim": float(np.nanmean(ssims)) if ssims else math.nan,
        "psnr_db_per_frame": psnrs,
        "ssim_per_frame": ssims,
        "pixels_fraction": float(where.mean()),
    }


def mean_colours(frames: np.ndarray, masks: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """(T, N, 3) mean RGB/255 of each character's own pixels; nan in frames where it has none.

    A pixel belongs to character i where its mask exceeds `threshold` and is the largest of all
    characters' masks, so an overlapping neighbour's colours never leak into i's identity.
    """
    f = np.asarray(frames, dtype=np.float64) / 255.0  # (T, H, W, 3)
    m = np.asarray(masks, dtype=np.float32)  # (T, N, H, W)
    own = (m > threshold) & (m >= m.max(axis=1, keepdims=True))
    count = own.sum(axis=(2, 3))  # (T, N)
    sums = np.einsum("tnhw,thwc->tnc", own.astype(np.float64), f)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count[..., None] > 0, sums / count[..., None], np.nan)


def colour_drift(
    frames: np.ndarray, reference: np.ndarray, masks: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Identity colour error and drift per frame and character, both (T, N), L2 in RGB/255.

    error(t) = |c_video(t) - c_ref(t)|, the mean colour inside the character's own truth mask in the
    video vs in the reference (ground-truth) render. drift(t) = |e(t) - e(t0)| with e the signed
    colour difference and t0 the first frame it is visible: how far its colours have wandered since
    the start. Measuring against the reference at the same frame cancels what the world itself
    changes (a mouth opening, a neighbour stepping aside), so a perfect render drifts by exactly 0.
    Units: 0 = unchanged, sqrt(3) = black to white; nan where the character is not visible.
    """
    diff = mean_colours(frames, masks) - mean_colours(reference, masks)  # (T, N, 3)
    error = np.linalg.norm(diff, axis=-1)
    drift = np.full(error.shape, np.nan)
    for i in range(diff.shape[1]):
        seen = np.flatnonzero(~np.isnan(diff[:, i, 0]))
        if seen.size:
            drift[:, i] = np.linalg.norm(diff[:, i] - diff[seen[0], i], axis=-1)
    return error, drift


def drift_summary(drift: np.ndarray) -> dict:
    """Mean, max and final (mean of the last 10% of frames) of a (T,) drift series, nan-aware."""
    d = np.asarray(drift, dtype=np.float64)
    if np.all(np.isnan(d)):
        return {"mean": math.nan, "max": math.nan, "final": math.nan}
    tail = d[-max(1, d.size // 10) :]
    return {
        "mean": float(np.nanmean(d)),
        "max": float(np.nanmax(d)),
        "final": float(np.nanmean(tail)) if not np.all(np.isnan(tail)) else math.nan,
    }
