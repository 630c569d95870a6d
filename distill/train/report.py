"""The distillation comparison table, built from `bya model eval` JSON reports: `python -m distill.train.report`.

Each row is one report; figures are means over the clips every report shares (the first `--clips` of
the held-out seeds), so runs evaluated on 3 or 6 clips compare on the same dialogues.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

KEYS = (
    ("lip_sync_r_mean", "lip-sync r"),
    ("auc_own", "AUC own"),
    ("auc_other", "AUC other"),
    ("leak_ratio", "leak"),
    ("mask_iou", "mask IoU"),
    ("background_psnr_db", "bg PSNR dB"),
)


def row(path: Path, seeds: set[int]) -> dict:
    rep = json.loads(path.read_text())
    clips = [c for c in rep["clips"] if c["seed"] in seeds]
    out = {
        "report": path.name,
        "steps": rep["steps"],
        "window": rep.get("window_chunks"),
        "clips": len(clips),
    }
    for k, _ in KEYS:
        vals = [c[k] for c in clips if c.get(k) is not None and np.isfinite(c[k])]
        out[k] = float(np.mean(vals)) if vals else None
    return out


def table(rows: list[tuple[str, dict]]) -> str:
    head = "| model | steps | window | " + " | ".join(h for _, h in KEYS) + " |"
    lines = [head, "|---|---:|---:|" + "---:|" * len(KEYS)]
    for name, r in rows:
        cells = ["-" if r[k] is None else f"{r[k]:.3f}" for k, _ in KEYS]
        lines.append(f"| {name} | {r['steps']} | {r['window']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("reports", nargs="+", help="NAME=REPORT.json, in table order")
    p.add_argument("--seeds", default="101,102,103", help="held-out seeds every report shares")
    args = p.parse_args(argv)
    seeds = {int(s) for s in args.seeds.split(",")}
    rows = []
    for spec in args.reports:
        name, _, path = spec.partition("=")
        rows.append((name, row(Path(path), seeds)))
    print(table(rows))


if __name__ == "__main__":
    main()
