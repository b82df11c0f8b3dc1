"""scripts/seeds.py: the seed summaries the results pages quote, from run folders or from its saved records."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.cli import main
from core.config import TrainConfig
from core.setup import subsample

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "seeds.py"


def load_script(name: str):
    """scripts/NAME.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, SCRIPT.with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


seeds = load_script("seeds")


def train(tiny_encoder, demo_data, runs: Path, seed: int) -> Path:
    args = ["train", "--variant", "rrobin-full", "--encoder", str(tiny_encoder), "--data-dir", str(demo_data),
            "--runs-dir", str(runs), "--name", f"r{seed}", "--max-train", "16", "--max-dev", "8", "--batch-size", "4",
            "--lr", "1e-3", "--epochs", "2", "--seed", str(seed)]
    assert main(args) == 0
    return runs / f"r{seed}"


def test_saved_records_give_the_run_folders_tables(tiny_encoder, demo_data, tmp_path):
    runs = [train(tiny_encoder, demo_data, tmp_path / "runs", s) for s in (0, 1)]
    records = tmp_path / "seeds.json"
    cmd = [sys.executable, str(SCRIPT)]
    from_folders = subprocess.run([*cmd, *map(str, runs), "--json", str(records)], capture_output=True, text=True,
                                  check=True).stdout
    assert "| r0 | 0 | 2 |" in from_folders and "| r0 | 2 |" in from_folders  # a run's rows; the recipe's, 2 runs
    from_records = subprocess.run([*cmd, "--records", str(records)], capture_output=True, text=True,
                                  check=True).stdout
    assert from_records == from_folders
    mixed = subprocess.run([*cmd, str(runs[1]), "--records", str(records)], capture_output=True, text=True,
                           check=True).stdout
    assert "| r0 | 3 |" in mixed  # the same run from a record and from its folder: one recipe, three rows


def test_records_pick_the_first_epoch_of_the_best_mean_dev_metric(tmp_path):
    def epoch(n: int, sst: float, para: float, sts: float) -> dict:
        return {"kind": "epoch", "epoch": n, "seconds": 10.0,
                "dev": {"sst/acc": sst, "para/acc": para, "sts/pearson": sts, "cfimdb/acc": 1.0 if n == 1 else 0.0}}
    config = {**TrainConfig(variant="rrobin-full").to_dict(), "tasks": ["sst", "para", "sts", "cfimdb"]}
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"run": {"config": config, "epochs": [
        epoch(1, 0.40, 0.80, 0.80), epoch(2, 0.50, 0.80, 0.80), epoch(3, 0.45, 0.85, 0.80)]}}))
    (run,) = seeds.from_records(path)
    assert run["best_epoch"] == 2  # CFIMDB is a helper task: its dev accuracy does not judge; ties keep the first
    assert run["best"]["sst/acc"] == 0.50
    assert abs(run["best"]["overall"] - (0.50 + 0.80 + 0.90) / 3) < 1e-12


def test_every_committed_seed_table_comes_back_from_its_records():
    """The results pages quote ``seeds.md`` files; their ``seeds.json`` records rebuild each one exactly."""
    pairs = [(j, j.with_name("seeds.md")) for top in ("results", "experiments")
             for j in sorted((ROOT / top).glob("**/seeds.json"))]
    assert len(pairs) >= 10
    for records, table in pairs:
        assert seeds.summary(seeds.from_records(records)) == table.read_text(), records


def test_every_committed_ensemble_table_comes_back_from_its_records(tmp_path):
    """Each ``--json`` file of scripts/ensemble_seeds.py under experiments/ rebuilds the table beside it exactly;
    a JSON file that is not one is refused with its name."""
    ensemble_seeds = load_script("ensemble_seeds")
    pairs = [(j, j.with_suffix(".md")) for j in sorted((ROOT / "experiments").glob("**/*.json"))
             if j.with_suffix(".md").exists() and '"members"' in j.read_text()]
    assert len(pairs) >= 3
    for records, table in pairs:
        assert ensemble_seeds.markdown(ensemble_seeds.from_records(records)) + "\n" == table.read_text(), records
    bad = tmp_path / "seeds.json"
    bad.write_text(json.dumps({"run": {}}))
    with pytest.raises(SystemExit, match="seeds.json"):
        ensemble_seeds.from_records(bad)


def test_records_of_a_single_task_run_are_judged_by_its_own_task(tmp_path):
    config = {**TrainConfig(variant="finetune", task="cfimdb").to_dict(), "tasks": ["cfimdb"]}
    dev = [{"cfimdb/acc": 0.80}, {"cfimdb/acc": 0.90}]
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"run": {"config": config, "epochs": [
        {"kind": "epoch", "epoch": n, "seconds": 1.0, "dev": d} for n, d in enumerate(dev, 1)]}}))
    (run,) = seeds.from_records(path)
    assert run["best_epoch"] == 2  # CFIMDB trained alone is judged by CFIMDB (in a multitask run it is a helper)
    assert run["best"] is None  # no SST, Quora and STS: no overall, no best-checkpoint row


def test_a_single_task_runs_table_shows_its_task_and_dashes_for_the_others(tmp_path):
    config = {**TrainConfig(variant="finetune", task="para").to_dict(), "tasks": ["para"]}
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"run": {"config": config, "epochs": [
        {"kind": "epoch", "epoch": n, "seconds": 5.0, "dev": {"para/acc": acc}} for n, acc in ((1, 0.8), (2, 0.9))]}}))
    md = seeds.summary(seeds.from_records(path))
    assert "| run | 0 | 2 | - | 0.900 | - | 5 |" in md  # its epoch rows
    assert "| run | 2 | 1 | - | 0.900 ± 0.000 (0.900 to 0.900) | - |" in md  # the recipe's row for epoch 2


def test_dev_outputs_match_the_trainers_dev_values_and_an_ensemble_of_one_run_is_that_run(
        tiny_encoder, demo_data, tmp_path):
    run = train(tiny_encoder, demo_data, tmp_path / "runs", 0)
    dev_outputs = load_script("dev_outputs")
    full, raw = dev_outputs.collect([run, run], demo_data, ["sst", "para", "sts"])
    # the run evaluated the 8 dev examples of each task that --max-dev 8 picks
    data = {t: subsample(d, 8, 0) for t, d in full.items()}
    picks = {t: [full[t].ids.index(i) for i in d.ids] for t, d in data.items()}
    raw = {name: {t: o[picks[t]] for t, o in out.items()} for name, out in raw.items()}
    md, values = dev_outputs.report(data, raw)
    best = json.loads((run / "best.json").read_text())["dev"]
    for name in (str(run), "ensemble"):
        for key in ("sst/acc", "para/acc", "sts/pearson"):
            assert abs(values["values"][name][key] - best[key]) < 1e-6, (name, key)
    assert set(values["para_thresholds"][str(run)]) == set(dev_outputs.THRESHOLDS) and "| ensemble |" in md


def test_only_keeps_the_named_runs_of_the_records():
    records = ROOT / "experiments" / "sst-head-mlp" / "seeds.json"
    cmd = [sys.executable, str(SCRIPT), "--records", str(records)]
    two = subprocess.run([*cmd, "--only", "mlp-s0", "mlp-s1"], capture_output=True, text=True, check=True).stdout
    assert "| mlp-s0 | 2 | 0.497 ± " in two and "mlp-s2" not in two  # M at seeds 0 and 1, as the results pages quote
    bad = subprocess.run([*cmd, "--only", "mlp-s9"], capture_output=True, text=True)
    assert bad.returncode == 2 and "no run named mlp-s9" in bad.stderr


def test_sst_seeds_table_pairs_the_seeds_that_have_both_files(tmp_path):
    sst_table = load_script("sst_seeds_table")
    for seed, expert, ours in ((1, 0.40, 0.42), (2, 0.50, 0.46), (3, 0.45, None)):
        (tmp_path / f"expert-s{seed}.txt").write_text(f"dev accuracy {expert}\nseconds: total 1.0\n")
        if ours is not None:
            (tmp_path / f"ours-s{seed}.best.json").write_text(json.dumps({"dev": {"sst/acc": ours}}))
    seeds = sst_table.read_seeds(tmp_path)
    assert seeds == {1: (0.40, 0.42), 2: (0.50, 0.46)}  # seed 3 has no run of ours: left out
    md = sst_table.table(seeds)
    assert "| 1 | 0.4000 | 0.4200 | +0.0200 |" in md and "| 2 | 0.5000 | 0.4600 | -0.0400 |" in md
    assert "| mean ± sd, 2 seeds | 0.4500 ± 0.0707 | 0.4400 ± 0.0283 | -0.0100 ± 0.0424 |" in md


def test_ensemble_seeds_reads_what_walkless_ensemble_wrote(tiny_encoder, demo_data, tmp_path):
    """scripts/ensemble_seeds.py: each ensemble's row is the one walkless.json holds, and the gain row is the
    ensemble minus its members' mean."""
    ensemble_seeds = load_script("ensemble_seeds")
    runs = [train(tiny_encoder, demo_data, tmp_path / "runs", s) for s in (0, 1, 2)]
    folders = []
    for name, pair in (("e01", runs[:2]), ("e12", runs[1:])):
        assert main(["ensemble", *map(str, pair), "--out", str(tmp_path / name), "--data-dir", str(demo_data)]) == 0
        folders.append(tmp_path / name)
    ensembles = [ensemble_seeds.read(f) for f in folders]
    text = ensemble_seeds.markdown(ensembles)
    meta = json.loads((folders[0] / "walkless.json").read_text())
    assert ensemble_seeds.row("e01: ensemble", meta["dev"], bold=True) in text
    members = [m["dev"] for e in ensembles for m in e["members"]]
    gain = sum(e["dev"]["sst/acc"] for e in ensembles) / 2 - sum(m["sst/acc"] for m in members) / 4
    assert text.splitlines()[-1].split(" | ")[1] == f"{gain:.4f}"


paired = load_script("paired_seeds")
LEVERS = ROOT / "experiments" / "levers-on-best"


def test_an_epochs_log_gives_the_record_its_run_folder_gave(tmp_path):
    """The committed seed-0 logs of the levers-on-best runs read back as records; a line that is not an epoch's is
    refused with the file and line."""
    (run,) = seeds.from_epochs_log(LEVERS / "summed-s0-epochs.log")
    assert run["name"] == "summed-s0" and run["settings"]["seed"] == 0
    assert [e["epoch"] for e in run["epochs"]] == [1, 2, 3] and run["best_epoch"] == 3
    assert run["best"]["sst/acc"] == 0.4986 and run["best"]["sts/pearson"] == 0.8810
    bad = tmp_path / "x-epochs.log"
    bad.write_text("2026-12-05 INFO epoch 1: sst/acc 0.5 (1.0s)\n2026-12-05 INFO epoch 2: sst/acc (1.0s)\n")
    (tmp_path / "x-config.json").write_text((LEVERS / "summed-s0-config.json").read_text())
    with pytest.raises(SystemExit, match=r"x-epochs.log:2: not an"):
        seeds.from_epochs_log(bad)


def test_paired_seeds_subtracts_recipes_seed_by_seed():
    def run(name: str, seed: int, sst: float) -> dict:
        return {"name": name, "variant": "rrobin-full", "settings": {"seed": seed, "lr": 1e-3}, "best_epoch": 1,
                "best": {"sst/acc": sst, "para/acc": 0.8, "sts/pearson": 0.8, "overall": (sst + 0.8 + 0.9) / 3}}
    runs = [run("a0", 0, 0.50), run("a1", 1, 0.52), run("b0", 0, 0.47), run("b1", 1, 0.46), run("b2", 2, 0.40)]
    table = paired.by_seed(runs, [["A", "a0", "a1"], ["B", "b0", "b1", "b2"]])
    md = paired.markdown(table, [["A", "B"]])
    assert "| A − B | 0, 1 | +0.045 | 0.000 | 0.000 | +0.015 | +0.010, +0.020 |" in md  # seed 2 is B's alone
    assert "| A | 0.500 / 0.800 / 0.800 (0.733), epoch 1 | 0.520 / 0.800 / 0.800 (0.740), epoch 1 | not run |" in md
    with pytest.raises(SystemExit, match="two runs at seed 0"):
        paired.by_seed(runs, [["B", "b0", "a0"]])
    with pytest.raises(SystemExit, match="no run named c0"):
        paired.by_seed(runs, [["C", "c0"]])
    runs[1]["settings"]["lr"] = 2e-3
    with pytest.raises(SystemExit, match="a1 differs from a0 in more than the seed: lr"):
        paired.by_seed(runs, [["A", "a0", "a1"]])


def test_every_committed_paired_table_comes_back_from_its_arguments(monkeypatch):
    """Each ``paired.md`` under experiments/ and results/ is what scripts/paired_seeds.py prints for the
    ``paired.args`` beside it (paths from the repository root)."""
    monkeypatch.chdir(ROOT)
    pairs = [(a, a.with_name("paired.md")) for top in ("results", "experiments")
             for a in sorted((ROOT / top).glob("**/paired.args"))]
    assert pairs
    for args, table in pairs:
        assert paired.run(args.read_text().split()) == table.read_text(), args
