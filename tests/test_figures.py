"""The figures README.md quotes must be the shipped model's: every docs/bench JSON it names or that
docs/bench/figures.json indexes carries a provenance record whose weights hash to the shipped files; and
`bya bench all`, which regenerates them, never runs the model at a step count or window of its own."""

from __future__ import annotations

import argparse
import json
import re
import shlex
from pathlib import Path

from realtime.bench.all import STEPS, commands, lookup
from realtime.bench.machine import PROVENANCE_KEY, command_line, provenance
from realtime.cli import main
from realtime.model.default_model import default_steps, default_window
from realtime.model.spec import PICTURES, SHIPPED, SPECS, file_sha256

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "docs" / "bench"
README_JSON = re.compile(r"docs/bench/([\w.-]+\.json)")


def weight_problems(doc: dict, spec_name: str) -> list[str]:
    """What is wrong with a JSON's provenance for a figure of `spec_name` ([]: nothing)."""
    record = doc.get(PROVENANCE_KEY)
    if not isinstance(record, dict) or not isinstance(record.get("weights"), dict):
        return ["no provenance record (regenerate it with `bya bench all`)"]
    weights, spec = record["weights"], SPECS[spec_name]
    problems = []
    for path in (spec.generator_path, spec.autoencoder_path):
        if path.name not in weights:
            problems.append(f"{path.name} was not loaded (weights: {sorted(weights) or 'none'})")
    for other in SPECS.values():  # any spec's file it names must be that file as it ships now
        for path in (other.generator_path, other.autoencoder_path):
            if path.name in weights and weights[path.name] != file_sha256(path):
                problems.append(f"{path.name} sha256 {weights[path.name][:12]}… is not the shipped file's")
    return problems


def figure_problems(readme: str, index: dict, bench: Path) -> list[str]:
    """Every reason a figure README.md quotes is not (provably) the shipped model's."""
    independent = set(index.get("model_independent", {}))
    expected: dict[str, str] = {name: SHIPPED.name for name in README_JSON.findall(readme)}
    keys: dict[str, list[str]] = {}
    for fig in index["figures"]:
        expected[fig["json"]] = fig.get("model", SHIPPED.name)
        keys.setdefault(fig["json"], []).append(fig["key"])
    problems = []
    for name, spec_name in sorted(expected.items()):
        if name in independent or name == "figures.json":  # the index itself holds no figure
            continue
        path = bench / name
        if not path.is_file():
            problems.append(f"{name}: missing")
            continue
        doc = json.loads(path.read_text())
        problems += [f"{name}: {p}" for p in weight_problems(doc, spec_name)]
        for key in keys.get(name, []):
            try:
                lookup(doc, key)
            except (KeyError, IndexError, TypeError) as exc:
                problems.append(f"{name}: figure {key} not there ({exc})")
    return problems


def _index() -> dict:
    return json.loads((BENCH / "figures.json").read_text())


def test_quoted_figures_come_from_the_shipped_model() -> None:
    problems = figure_problems((ROOT / "README.md").read_text(), _index(), BENCH)
    assert not problems, "figures README.md quotes that are not the shipped model's:\n" + "\n".join(problems)


def _shipped_record() -> dict:
    return provenance([SHIPPED.generator_path, SHIPPED.autoencoder_path], "bya bench x", threads=2)


def test_the_check_tells_shipped_from_other_weights(tmp_path) -> None:
    index = {"figures": [{"json": "a.json", "key": "summary.r"}], "model_independent": {"d.json": "no model"}}
    readme = "see `docs/bench/b.json` and `docs/bench/d.json`"
    good = {"summary": {"r": 0.5}, PROVENANCE_KEY: _shipped_record()}
    (tmp_path / "a.json").write_text(json.dumps(good))
    (tmp_path / "b.json").write_text(json.dumps(good))
    (tmp_path / "d.json").write_text("{}")  # model-independent: no provenance needed
    assert figure_problems(readme, index, tmp_path) == []

    other = json.loads(json.dumps(good))
    other[PROVENANCE_KEY]["weights"] = {"student.safetensors": "0" * 64, SHIPPED.autoencoder: "0" * 64}
    (tmp_path / "b.json").write_text(json.dumps(other))  # a candidate's weights, not the shipped file's
    (tmp_path / "a.json").write_text(json.dumps({"summary": {}}))  # no record, no figure
    problems = figure_problems(readme, index, tmp_path)
    assert any("b.json" in p and f"{SHIPPED.generator} was not loaded" in p for p in problems)
    assert any("b.json" in p and "not the shipped file's" in p for p in problems)
    assert any("a.json" in p and "no provenance" in p for p in problems)
    assert any("a.json" in p and "summary.r not there" in p for p in problems)


def test_provenance_names_the_command_the_weights_and_the_machine() -> None:
    record = _shipped_record()
    assert record["command"] == "bya bench x"
    assert record["weights"] == {
        SHIPPED.generator: file_sha256(SHIPPED.generator_path),
        SHIPPED.autoencoder: file_sha256(SHIPPED.autoencoder_path),
    }
    assert record["machine"]["threads"] == 2 and record["date"].endswith("+00:00")
    ran = argparse.Namespace(_argv=("bench", "binding", "--onsets", "3"), onsets=3)
    assert command_line(ran, "bench binding") == "bya bench binding --onsets 3"
    built = argparse.Namespace(characters=[2, 3], onsets=3, model=None, quick=False, extended=True)
    assert command_line(built, "model eval") == "bya model eval --characters 2 3 --extended --onsets 3"


def test_the_index_names_only_what_bench_all_makes() -> None:
    index = _index()
    made = {s.json for s in STEPS}
    for fig in index["figures"]:
        assert fig["json"] in made, f"{fig['json']} is not written by bya bench all"
        assert fig.get("model", SHIPPED.name) in SPECS
    readme_named = set(README_JSON.findall((ROOT / "README.md").read_text())) - {"figures.json"}
    assert readme_named <= made | set(index["model_independent"]), readme_named - made


def _dry_run(capsys, *flags: str) -> list[list[str]]:
    assert main(["bench", "all", *flags, "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    return [shlex.split(line)[1:] for line in lines if line.startswith("bya ")]


def _check_model_settings(argv: list[str]) -> None:
    """No step count or context window other than the checkpoint's own (`bench load --window` is its
    measurement window in seconds, not the model's)."""
    checkpoint = argv[argv.index("--checkpoint") + 1] if "--checkpoint" in argv else SHIPPED.generator_path
    if "--steps" in argv:
        assert int(argv[argv.index("--steps") + 1]) == default_steps(checkpoint), argv
    if "--window" in argv and argv[:2] != ["bench", "load"]:
        config = json.loads(Path(checkpoint).with_suffix(".json").read_text())["config"]
        assert int(argv[argv.index("--window") + 1]) == default_window(checkpoint, config["window_chunks"])


def test_bench_all_quick_dry_run_lists_shorter_runs_of_the_shipped_settings(capsys, tmp_path) -> None:
    runs = _dry_run(capsys, "--quick", "--out", str(tmp_path))
    assert [r[:2] for r in runs] == [
        ["model", "eval"],
        ["model", "eval"],
        ["bench", "binding"],
        ["bench", "stream"],
        ["bench", "latency"],
        ["bench", "load"],
        ["bench", "batching"],
        ["bench", "contention"],
        ["bench", "pictures"],  # the picture steps name the rig model: pictures are always its
        ["model", "eval"],
        ["bench", "stream"],
        ["bench", "latency"],
    ]
    rig = str(PICTURES.generator_path)
    for argv in runs:
        _check_model_settings(argv)
        assert "--extended" not in argv
        named = [argv[i + 1] for i, a in enumerate(argv) if a in ("--model", "--checkpoint")]
        assert named in ([], [rig]), argv  # the shipped default's settings, or the picture model's
        assert Path(argv[argv.index("--out") + 1]).parent == tmp_path
    latency = next(r for r in runs if r[:2] == ["bench", "latency"])
    assert latency[latency.index("--characters") + 1] == "2"
    assert not tmp_path.joinpath("eval_student.json").exists()  # a dry run runs nothing


def test_bench_all_in_full_runs_the_extended_eval_the_teacher_and_drift(capsys) -> None:
    runs = _dry_run(capsys)
    assert ["bench", "drift", "--out", "docs/bench/drift_10min.json"] in runs
    assert sum(r[:3] == ["model", "eval", "--extended"] for r in runs) == 4  # + the rig model on the world
    for argv in runs:
        _check_model_settings(argv)
    assert len(commands(False, Path("x"))) == len(STEPS)
