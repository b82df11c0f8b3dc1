"""``walkless ensemble``: one run's ensemble is that run; two runs' is the hand-averaged probabilities and
similarities; the folder loads, evaluates, predicts and scores like a checkpoint; members must share a tokenizer."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from core.calibrate import calibrate_checkpoint
from core.checkpoint import average_checkpoints, load_checkpoint
from core.cli import main
from core.data import load_task
from core.ensemble import Ensemble, build_ensemble, combine
from core.evaluate import evaluate, outputs
from core.runs import checkpoint_path, list_runs
from core.scoring import Scorer

SIX = {f"{t}-{s}-output.csv" for t in ("sst", "para", "sts") for s in ("dev", "test")}


def tiny_run(encoder: Path, runs: Path, name: str, seed: int, *extra: str) -> Path:
    assert main(["train", "--variant", "rrobin", "--encoder", str(encoder), "--runs-dir", str(runs), "--name", name,
                 "--epochs", "1", "--batch-size", "8", "--max-train", "32", "--max-dev", "24", "--max-steps", "3",
                 "--lr", "1e-3", "--threads", "1", "--seed", str(seed), *extra]) == 0
    return runs / name


@pytest.fixture(scope="module")
def runs(tiny_encoder, tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("runs")
    return [tiny_run(tiny_encoder, folder, f"r{seed}", seed) for seed in (0, 1)]


def dev_sets(model, tok, data_dir: Path) -> dict:
    return {t: load_task(data_dir, t, "dev", tok) for t in model.heads.tasks}


def test_combine_averages_probabilities_and_similarities():
    a, b = torch.tensor([[2.0, 0.0, -1.0]]), torch.tensor([[-1.0, 3.0, 0.5]])
    mean_p = (a.softmax(-1) + b.softmax(-1)) / 2
    assert torch.allclose(combine("sst", [a, b]).softmax(-1), mean_p, atol=1e-7)
    assert torch.allclose(combine("sst", [a, b]).exp(), mean_p, atol=1e-7)  # log of the mean, normalised already
    z1, z2 = torch.tensor([4.0, -30.0, 0.3]), torch.tensor([-1.0, -35.0, 0.1])
    p = (torch.sigmoid(z1) + torch.sigmoid(z2)) / 2
    assert torch.allclose(torch.sigmoid(combine("para", [z1, z2])), p, atol=1e-7)
    assert torch.isfinite(combine("para", [torch.tensor([200.0]), torch.tensor([150.0])])).all()  # no inf
    assert torch.equal(combine("sts", [torch.tensor([1.0, 6.0]), torch.tensor([2.0, -1.0])]), torch.tensor([1.5, 2.5]))
    with pytest.raises(ValueError, match="no member"):
        combine("sts", [])


def test_an_ensemble_of_one_run_is_that_run(runs, demo_data, tmp_path):
    build_ensemble([runs[0]], tmp_path / "one", demo_data)
    ens, meta, tok = load_checkpoint(tmp_path / "one")
    run, _, _ = load_checkpoint(runs[0])
    assert isinstance(ens, Ensemble) and meta["kind"] == "ensemble" and ens.heads.tasks == run.heads.tasks
    dev = dev_sets(run, tok, demo_data)
    ours, theirs = evaluate(ens, dev)[0], evaluate(run, dev)[0]
    assert ours == theirs  # every metric, to the last digit
    assert {k: v for k, v in meta["dev"].items() if k != "overall"} == {
        k: v for k, v in theirs.items() if k.endswith(("/acc", "/macro_f1", "/pearson"))}
    for task, data in dev.items():
        e, r = outputs(ens, data), outputs(run, data)
        if task == "sts":
            assert torch.equal(e, r.clamp(0, 5))
        elif task == "para":
            assert torch.allclose(torch.sigmoid(e), torch.sigmoid(r), atol=1e-6)
        else:
            assert torch.allclose(e.softmax(-1), r.softmax(-1), atol=1e-6)
    assert main(["predict", "--checkpoint", str(tmp_path / "one"), "--all", "--data-dir", str(demo_data),
                 "--out", str(tmp_path / "ens-out")]) == 0
    assert main(["predict", "--checkpoint", str(runs[0]), "--all", "--data-dir", str(demo_data),
                 "--out", str(tmp_path / "run-out")]) == 0
    for name in SIX:  # the submission files are the run's, byte for byte
        assert (tmp_path / "ens-out" / name).read_bytes() == (tmp_path / "run-out" / name).read_bytes(), name


def test_an_ensemble_of_two_averages_their_probabilities(runs, demo_data, tmp_path, capsys):
    assert main(["ensemble", str(runs[0]), str(runs[1]), "--out", str(tmp_path / "two"), "--data-dir",
                 str(demo_data)]) == 0
    printed = capsys.readouterr()
    assert "adds" in printed.out and "ensemble" in printed.out and "wrote the ensemble of 2 runs" in printed.err
    ens, meta, tok = load_checkpoint(tmp_path / "two")
    members = [load_checkpoint(r)[0] for r in runs]
    assert [m["source"] for m in meta["members"]] == [str(checkpoint_path(r)) for r in runs]
    dev = dev_sets(ens, tok, demo_data)
    for task, data in dev.items():
        e, (a, b) = outputs(ens, data), [outputs(m, data) for m in members]
        assert not torch.allclose(a, b, atol=1e-3)  # two different models
        if task == "sst":
            assert torch.allclose(e.softmax(-1), (a.softmax(-1) + b.softmax(-1)) / 2, atol=1e-6)
        elif task == "para":
            assert torch.allclose(torch.sigmoid(e), (torch.sigmoid(a) + torch.sigmoid(b)) / 2, atol=1e-6)
        else:
            assert torch.allclose(e, (a.clamp(0, 5) + b.clamp(0, 5)) / 2, atol=1e-6)
    metrics = evaluate(ens, dev)[0]
    assert all(meta["dev"][k] == v for k, v in metrics.items())  # what the folder says is what it scores
    # what each member adds: the ensemble minus the other member alone
    (one, two) = meta["leave_one_out"]
    solo = [evaluate(m, dev)[0] for m in members]
    for k in ("sst/acc", "para/acc", "sts/pearson"):
        assert one["without"][k] == solo[1][k] and two["without"][k] == solo[0][k]
        assert one["adds"][k] == pytest.approx(metrics[k] - solo[1][k], abs=1e-12)
        assert meta["members"][0]["dev"][k] == solo[0][k]
    # scoring text: the averaged probabilities of the members' scorers
    s, m0, m1 = Scorer.load(tmp_path / "two"), Scorer.load(runs[0]), Scorer.load(runs[1])
    text = "A lovely film."
    want = [(x + y) / 2 for x, y in zip(m0.sentiment(text)["probs"], m1.sentiment(text)["probs"], strict=True)]
    assert s.sentiment(text)["probs"] == pytest.approx(want, abs=1e-6)
    pair = s.pair("How do I cook rice?", "What is the best way to cook rice?")
    p0, p1 = m0.pair("How do I cook rice?", "What is the best way to cook rice?"), m1.pair(
        "How do I cook rice?", "What is the best way to cook rice?")
    assert pair["paraphrase"] == pytest.approx((p0["paraphrase"] + p1["paraphrase"]) / 2, abs=1e-6)
    assert pair["similarity"] == pytest.approx((p0["similarity"] + p1["similarity"]) / 2, abs=1e-5)
    # the folder is listed as a finished run, and eval / predict --all take it
    listed = {r.name: r for r in list_runs(tmp_path)}
    assert listed["two"].state == "finished" and listed["two"].dev == meta["dev"]
    assert main(["eval", "--checkpoint", str(tmp_path / "two"), "--data-dir", str(demo_data)]) == 0
    assert main(["predict", "--checkpoint", str(tmp_path / "two"), "--all", "--data-dir", str(demo_data),
                 "--out", str(tmp_path / "pred")]) == 0
    assert {p.name for p in (tmp_path / "pred").iterdir()} == SIX


def test_the_folder_stands_alone_and_refuses_what_cannot_be_averaged(runs, demo_data, tmp_path):
    moved = [Path(shutil.copytree(r, tmp_path / r.name)) for r in runs]
    build_ensemble(moved, tmp_path / "ens")
    for r in moved:  # the members were copied in: the runs can go
        shutil.rmtree(r)
    ens, meta, _ = load_checkpoint(tmp_path / "ens")
    assert len(ens.members) == 2 and meta["dev"] == {} and "trainer_state.json" not in {
        p.name for p in (tmp_path / "ens" / "members" / meta["members"][0]["name"]).iterdir()}
    with pytest.raises(ValueError, match="exists"):
        build_ensemble(runs, tmp_path / "ens")
    with pytest.raises(ValueError, match="is an ensemble"):
        build_ensemble([runs[0], tmp_path / "ens"], tmp_path / "nested")
    with pytest.raises(ValueError, match="an ensemble; averaging takes one model's checkpoint"):
        average_checkpoints([runs[0], tmp_path / "ens"], tmp_path / "avg")
    with pytest.raises(ValueError, match="an ensemble; calibrate takes one model's checkpoint"):
        calibrate_checkpoint(tmp_path / "ens", demo_data, tmp_path / "cal", 8)
    # another vocabulary: the same folder with two token ids swapped
    odd = Path(shutil.copytree(checkpoint_path(runs[1]), tmp_path / "odd"))
    (odd / "manifest.json").unlink()
    tj = json.loads((odd / "tokenizer.json").read_text())
    vocab = tj["model"]["vocab"]
    vocab["film"], vocab["movie"] = vocab["movie"], vocab["film"]
    (odd / "tokenizer.json").write_text(json.dumps(tj))
    with pytest.raises(ValueError, match=r"odd: its tokenizer .* differs from .*r0's"):
        build_ensemble([runs[0], odd], tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
    assert main(["ensemble", str(runs[0]), str(odd), "--out", str(tmp_path / "bad")]) == 1
    damaged = Path(shutil.copytree(tmp_path / "ens", tmp_path / "damaged"))
    shutil.rmtree(damaged / "members" / meta["members"][1]["name"])
    with pytest.raises(ValueError, match="ensemble member missing"):
        load_checkpoint(damaged)


async def test_the_apps_evaluate_and_score_screens_take_an_ensemble(runs, demo_data, tmp_path):
    from support.tui import text_of, wait_for
    from textual.widgets import Input

    from walkless_tui.app import WalklessApp

    build_ensemble(runs, tmp_path / "ens", demo_data)
    app = WalklessApp(tmp_path, demo_data)
    async with app.run_test(size=(160, 50)) as pilot:
        app.open_evaluate(tmp_path / "ens")  # listed as a run: its dev reports, then ctrl+r evaluates the folder
        await pilot.pause()
        ev = app.screen
        await wait_for(pilot, lambda: ev.shown > 0 and ev.reports, what="the stored reports")
        stored = ev.reports["sst"]["confusion"]
        shown = ev.shown
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: ev.shown > shown, timeout=60, what="the evaluation")
        assert "best checkpoint of epoch 0" in ev.source and ev.reports["sst"]["confusion"] == stored
        app.pop_screen()
        app.open_score(tmp_path / "ens")
        await pilot.pause()
        sc = app.screen
        await wait_for(pilot, lambda: sc.scorer is not None, timeout=60, what="the ensemble to load")
        assert "ensemble of 2" in text_of(sc.query_one("#score-info"))
        sc.query_one("#sentence", Input).value = "A lovely film."
        await wait_for(pilot, lambda: sc.sentiment_result is not None, what="the sentence's scores")
        want = Scorer.load(tmp_path / "ens").sentiment("A lovely film.")["probs"]
        assert sc.sentiment_result["probs"] == pytest.approx(want, abs=1e-6)
