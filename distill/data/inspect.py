"""`bya data inspect`: summarise a dataset and verify every shard, so a corrupt download or disk shows early."""

from __future__ import annotations

import argparse
from collections import Counter

from distill.data.shards import ShardDataset


def add_inspect_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("root", help="dataset folder written by `bya data synth`")
    p.add_argument("--no-verify", action="store_true", help="skip the checksum and read check of every shard")


def inspect_command(args: argparse.Namespace) -> int:
    ds = ShardDataset(args.root, verify=not args.no_verify)
    m = ds.manifest
    counts = Counter(n for s in m["shards"] for n in s["characters"])
    print(
        f"{args.root}: {m['clips']} clips in {len(m['shards'])} shards, {m['size']}x{m['size']} px, "
        f"{m['seconds']} s each at {m['video_fps']} fps / {m['audio_sample_rate']} Hz, seed {m['seed']}"
    )
    print("characters per clip: " + ", ".join(f"{k}: {counts[k]}" for k in sorted(counts)))
    if not args.no_verify:
        print(f"verified {ds.verify_all()} clips: every checksum matches and every clip reads back")
    return 0
