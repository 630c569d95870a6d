"""The latency benchmark's outputs: a table on stdout and two PNG plots (distribution, stages)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clients.latency_analysis import STAGES


def _fmt(x, width: int = 6) -> str:
    return f"{'-':>{width}}" if x is None else f"{x:>{width}.0f}"


def print_table(result: dict) -> None:
    m = result["machine"]
    print(f"machine: {m['cpu']}, {m['cores']} cores, {m['threads']} threads, load {m['load_average_1_5_15']}")
    print(f"model: {result['model']['path']} at {result['model']['steps']} step(s) {result['model']['note']}")
    head = (
        f"{'scene':>10} {'canvas':>9} {'N':>2} {'backend':7} {'on':>3} {'mouth':>12} {'g2g p50':>7} {'p95':>6} {'max':>6} "
        f"{'pipe p50':>8} {'p95':>6} {'max':>6} {'fps':>5} {'fresh':>5} {'jit':>4} {'lost':>4} {'rep':>4} "
        f"{'A/V':>5} {'A/Vm':>5} {'room':>5}"
    )
    print(head)
    for r in runs_of(result):
        g, p, d, mo = r["glass_to_glass_ms"], r["pipeline_ms"], r["delivery"], r["mouth"]
        flag = {True: "", False: "!", None: "?"}[mo["valid"]]
        control = "-" if mo["controls_moved_rate"] is None else f"{mo['controls_moved_rate']:.0%}"
        mouth = f"{mo['detected_rate']:.0%}/{control}{flag}"
        print(
            f"{r.get('scene', 'world')[:10]:>10} {r.get('canvas', '-'):>9} {r['characters']:>2} {r['backend']:7} {r['measured']:>3} {mouth:>12} {_fmt(g.get('p50'), 7)} "
            f"{_fmt(g.get('p95'))} {_fmt(g.get('max'))} {_fmt(p.get('p50'), 8)} {_fmt(p.get('p95'))} "
            f"{_fmt(p.get('max'))} {d['fps_delivered'] or 0:>5.1f} {d['fps_fresh'] or 0:>5.1f} "
            f"{d['interval_jitter_ms'] or 0:>4.0f} {d['lost_in_transport'] + d['dropped_at_server']:>4} "
            f"{d['engine_repeated_frames']:>4} {_fmt(r['av_offset_ms']['same_instant'].get('mean'), 5)} "
            f"{_fmt(r['av_offset_ms']['mouth_onset'].get('p50'), 5)} {_fmt(r['room']['latency_ms'], 5)}"
        )
    print(
        "mouth = bound mouths detected / other mouths moved (! not a valid mouth measurement, ? no control "
        "mouth with one character); g2g = "
        "glass-to-glass to the moving mouth; pipe = to the first frame carrying the onset's audio; fresh = "
        "generated (not repeated) frames/s; jit = frame-interval std; lost = lost + dropped; rep = repeated "
        "frames; A/V = video minus audio arrival of the same instant, A/Vm = mouth onset minus audio onset (ms)"
    )


def runs_of(result: dict) -> list[dict]:
    """Every run of a result: the world-scene cast sizes, then the scenes (`--scene`)."""
    return [*result["runs"], *result.get("scene_runs", [])]


def _label(r: dict) -> str:
    where = f"{r['scene']} " if "scene" in r else ""
    return f"{where}{r['characters']} char, {r['backend']}"


def write_plots(result: dict, stem: Path) -> list[Path]:
    """stem_distribution.png (CDFs of the latencies) and stem_stages.png (mean stages, stacked)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = runs_of(result)
    labels = [_label(r) for r in runs]
    colours = plt.cm.tab10(np.arange(len(runs)) % 10)
    paths = []

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for r, label, c in zip(runs, labels, colours, strict=True):
        for key, style, what in (
            ("pipeline_ms", "--", "to onset frame"),
            ("glass_ms", "-", "to moving mouth"),
        ):
            values = np.sort([o[key] for o in r["per_onset"] if key in o])
            if len(values):
                note = "" if key == "pipeline_ms" or r["mouth"]["valid"] else " (not valid)"
                note = " (no control)" if key != "pipeline_ms" and r["mouth"]["valid"] is None else note
                ax.step(
                    values,
                    np.arange(1, len(values) + 1) / len(values),
                    style,
                    color=c,
                    where="post",
                    label=f"{label}: {what}{note}",
                )
    for target in (result["targets"]["p50_ms"], result["targets"]["p95_ms"]):
        ax.axvline(target, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("glass-to-glass latency (ms)")
    ax.set_ylabel("fraction of onsets")
    ax.set_title(
        f"Latency per speech onset ({result['model']['path'].rsplit('/', 1)[-1]}, {result['model']['steps']} step)"
    )
    ax.legend(fontsize=6, loc="lower right")
    ax.grid(alpha=0.3)
    paths.append(stem.with_name(stem.name + "_distribution.png"))
    fig.tight_layout()
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(9, 4.8))
    names = [*STAGES, "response"]
    stage_colours = plt.cm.tab20(np.arange(len(names)) % 20)
    x = np.arange(len(runs))
    up, down = np.zeros(len(runs)), np.zeros(len(runs))
    for name, c in zip(names, stage_colours, strict=True):
        v = np.array([r["stages_ms"].get(name, 0.0) for r in runs])
        bottom = np.where(v >= 0, up, down)
        hatch = None
        if name == "response":
            hatch = "//"
        ax.bar(x, v, bottom=bottom, color=c, label=name, hatch=hatch, edgecolor="white", lw=0.3)
        up, down = up + np.clip(v, 0, None), down + np.clip(v, None, 0)
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xticks(x, labels, rotation=20, fontsize=8)
    ax.set_ylabel("mean ms per onset")
    ax.set_title("Where the time goes: capture -> moving mouth (response hatched; see stage_notes)")
    ax.legend(fontsize=7, ncol=2, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    paths.append(stem.with_name(stem.name + "_stages.png"))
    fig.tight_layout()
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    return paths
