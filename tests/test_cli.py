"""The `bya` command line: help works without heavy imports, bad arguments end in one clear line."""

from __future__ import annotations

import pytest

from realtime.cli import main


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name in ("demo", "data", "eval", "bench", "model", "train"):
        assert name in out


def test_subcommand_help_shows_its_arguments(capsys):
    with pytest.raises(SystemExit):
        main(["data", "synth", "--help"])
    out = capsys.readouterr().out
    assert "--clips" in out and "--seed" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["data", "synth", "--out", "{tmp}/ds", "--clips", "0"], "--clips must be at least 1, got 0"),
        (["data", "synth", "--out", "{tmp}/ds", "--clips", "1", "--size", "100"], "--size must be one of"),
        (
            ["data", "synth", "--out", "{tmp}/ds", "--clips", "1", "--characters", "5"],
            "between 1 and 4, got 5",
        ),
        (
            ["data", "synth", "--out", "{tmp}/ds", "--clips", "1", "--characters", "0"],
            "between 1 and 4, got 0",
        ),
        (["data", "synth", "--out", "{tmp}/file/ds", "--clips", "1"], "cannot write to"),
        (["data", "inspect", "{tmp}/nothing"], "no manifest.json"),
        (["demo", "--characters", "5", "--out", "{tmp}/d"], "between 1 and 4, got 5"),
        (["demo", "--model", "{tmp}/none.safetensors", "--out", "{tmp}/d"], "missing"),
        (["demo", "--steps", "0", "--out", "{tmp}/d"], "--steps must be in [1, 100], got 0"),
        (["model", "eval", "--clips", "0"], "--clips must be in"),
        (["model", "eval", "--audio-guidance", "0.5"], "--audio-guidance must be in [1, 4], got 0.5"),
        (
            ["render", "--audio", "a.wav", "--audio-guidance", "nan", "--out", "{tmp}/o.mp4"],
            "--audio-guidance",
        ),
        (["serve", "--audio-guidance", "9"], "--audio-guidance must be in [1, 4], got 9"),
        (["model", "eval", "--checkpoint", "{tmp}/file", "--out", "{tmp}/e.json"], "missing"),
        (["train", "teacher", "--preset", "huge", "--out", "{tmp}/t"], "unknown preset 'huge'"),
        (["train", "teacher", "--minutes", "0", "--out", "{tmp}/t"], "must be positive"),
        (
            ["train", "autoencoder", "--minutes", "0", "--out", "{tmp}/a"],
            "--minutes must be positive, got 0.0",
        ),
        (["train", "autoencoder", "--size", "100", "--out", "{tmp}/a"], "--size must be one of"),
        (["train", "autoencoder", "--decoder-only", "--out", "{tmp}/a"], "--decoder-only needs --init"),
        (
            ["train", "mouth-reader", "--minutes", "-1", "--out", "{tmp}/m"],
            "--minutes must be positive, got -1.0",
        ),
        (["train", "mouth-reader", "--eval-seeds", "0", "--out", "{tmp}/m"], "--eval-seeds must be in 1.."),
    ],
)
def test_bad_arguments_give_one_line(tmp_path, capsys, argv, message):
    (tmp_path / "file").write_text("x")
    rc = main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.startswith("bya: error:") and message in err and "\n" not in err
    assert not (tmp_path / "ds").exists() or not any((tmp_path / "ds").iterdir())


@pytest.mark.slow
def test_demo_generates_with_the_shipped_model(tmp_path, capsys):
    """`bya demo` end to end on the shipped weights at the shipped setting (no flags: the student's own
    1 step): a 3-second, 2-character scene, generated and scored, and the scores are a model's, not noise."""
    import json

    rc = main(["demo", "--seconds", "3", "--out", str(tmp_path / "d")])
    assert rc == 0
    out = capsys.readouterr().out
    assert "generated 74 frames with toon-s-student.safetensors (1 steps" in out, out
    assert "scores: lip-sync r" in out and "mouth motion" in out
    for name in ("demo.mp4", "truth.mp4", "clip.npz", "report.json", "report.png", "photo.mp4", "photo.png"):
        assert (tmp_path / "d" / name).stat().st_size > 0
    assert "photo: moved by rig-s.safetensors" in out  # beside the cartoon, a shipped photo talks
    report = json.loads((tmp_path / "d" / "report.json").read_text())
    assert report["masks"]["iou_mean"] > 0.3  # the router found the characters
    assert report["binding"]["auc_own_mean"] > 0.7  # mouths move with their own voices


def test_every_wings_commands_resolve_to_functions() -> None:
    """Each wing registers its own subcommands; every entry must name an importable argument adder and
    command, and the train wing has the autoencoder and mouth reader beside the teacher and student."""
    from realtime.cli import _load, all_commands

    table = all_commands()
    assert {"train autoencoder", "train mouth-reader", "train teacher", "train student"} <= set(table)
    for name, (help_text, add_args, command) in table.items():
        assert help_text, name
        assert callable(_load(add_args)) and callable(_load(command)), name
