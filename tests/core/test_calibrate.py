"""The paraphrase head's eval-mode offset: its fit, where the model applies it, the trainer's refit before each dev
evaluation, and ``walkless calibrate`` on a finished run."""

from __future__ import annotations

import json
import re

import pytest
import torch

from core.calibrate import calibrate_para, fit_offset
from core.checkpoint import average_checkpoints, load_checkpoint, save_model
from core.cli import main
from core.config import TrainConfig
from core.data import collate, load_task
from core.evaluate import evaluate, outputs
from core.runs import read_json, read_metrics
from core.scoring import Scorer
from core.setup import build_model, prepare, subsample


def test_fit_offset_recovers_a_shift_and_matches_the_label_rate():
    g = torch.Generator().manual_seed(0)
    x = 2 * torch.randn(200_000, generator=g)
    y = torch.bernoulli(torch.sigmoid(x - 1.0), generator=g)  # the labels of logits 1.0 too high
    b = fit_offset(x, y)
    assert b == pytest.approx(-1.0, abs=0.03)
    assert torch.sigmoid(x.double() + b).mean().item() == pytest.approx(y.double().mean().item(), abs=1e-9)
    with pytest.raises(ValueError, match="both classes; got 3 pairs with 3 duplicates"):
        fit_offset(torch.zeros(3), torch.ones(3))


@pytest.mark.parametrize("variant, pair_input", [("rrobin", "bi"), ("rrobin+rlayer", "bi"), ("rrobin", "cross")])
def test_offset_moves_the_paraphrase_logit_in_eval_mode_only(tiny_encoder, demo_data, variant, pair_input):
    c = TrainConfig(variant=variant, encoder=str(tiny_encoder), data_dir=str(demo_data), max_train=16, max_dev=8,
                    dropout=0.0, encoder_dropout=0.0, pair_input=pair_input)
    s = prepare(c)
    torch.manual_seed(0)
    model = build_model(s, torch.device("cpu"))
    batches = {t: collate(s.train[t], list(range(8)), model.heads.cross) for t in ("sst", "para", "sts")}

    def out(train: bool) -> dict[str, torch.Tensor]:
        model.train(train)
        with torch.no_grad():
            return {t: model(b) for t, b in batches.items()}

    before = out(False)
    model.heads.para_offset = 0.7
    tr, ev = out(True), out(False)
    for t in ("sst", "sts"):  # without dropout the two modes agree, and only the paraphrase logit moves
        assert torch.equal(tr[t], before[t]) and torch.equal(ev[t], before[t])
    assert torch.equal(tr["para"], before["para"])  # training never sees the offset
    assert torch.allclose(ev["para"], before["para"] + 0.7)


def tiny_run(tiny_encoder, demo_data, tmp_path, **kw) -> TrainConfig:
    return TrainConfig(variant="rrobin-full+rlayer", encoder=str(tiny_encoder), data_dir=str(demo_data),
                       runs_dir=str(tmp_path), name="cal", max_train=48, max_dev=16, batch_size=8, lr=1e-3,
                       seed=0, log_every=1000, **kw)


def test_trainer_refits_the_offset_before_each_dev_evaluation(tiny_encoder, demo_data, tmp_path):
    from core.trainer import Trainer

    c = tiny_run(tiny_encoder, demo_data, tmp_path, epochs=2, calibrate_para=40)
    run = tmp_path / "cal"
    run.mkdir()
    s = prepare(c)
    Trainer(s, run).fit()
    records = [r for r in read_metrics(run) if r["kind"] in ("calibration", "epoch")]
    assert [(r["kind"], r["epoch"]) for r in records] == [("calibration", 1), ("epoch", 1), ("calibration", 2),
                                                          ("epoch", 2)]
    best = read_json(run / "best.json")
    fit = next(r for r in records if r["kind"] == "calibration" and r["epoch"] == best["epoch"])
    fitted = fit["para_offset"]
    assert fit["pairs"] == 40 and 0 < fit["labels"] < 1
    model, meta, _ = load_checkpoint(run)
    assert fitted != 0.0 and model.heads.para_offset == fitted == meta["heads"]["para_offset"]
    # Fitted on the raw eval-mode logits of the same 40 training pairs: the saved model, in eval mode, predicts
    # their duplicate rate on average.
    pairs = subsample(s.train["para"], 40, c.seed)
    p = torch.sigmoid(outputs(model, pairs).double())
    assert p.mean().item() == pytest.approx(pairs.labels.double().mean().item(), abs=1e-6)
    # The dev values the trainer kept are those of the calibrated model.
    dev, _ = evaluate(model, s.dev)
    assert dev == pytest.approx(best["dev"], abs=1e-6)


def test_calibrate_command_writes_a_new_checkpoint_and_leaves_the_run_alone(tiny_encoder, demo_data, tmp_path,
                                                                           capsys):
    c = tiny_run(tiny_encoder, demo_data, tmp_path, epochs=1)
    assert main(["train", "--variant", c.variant, "--encoder", c.encoder, "--data-dir", c.data_dir,
                 "--runs-dir", c.runs_dir, "--name", "cal", "--max-train", "48", "--max-dev", "16",
                 "--batch-size", "8", "--threads", "1"]) == 0
    run = tmp_path / "cal"
    ckpt = run / read_json(run / "best.json")["path"]
    original = (ckpt / "walkless.json").read_bytes()
    out = tmp_path / "calibrated"
    assert main(["calibrate", str(run), "--data-dir", c.data_dir, "--pairs", "40", "--out", str(out)]) == 0
    assert re.search(r"paraphrase offset [-+]\d\.\d{4} on 40 training pairs: called duplicates \d\.\d{3} -> "
                     r"\d\.\d{3} \(labels \d\.\d{3}\)", capsys.readouterr().err)
    assert (ckpt / "walkless.json").read_bytes() == original  # the run is untouched
    model, meta, _ = load_checkpoint(out)
    raw, _, tok = load_checkpoint(run)
    assert raw.heads.para_offset == 0.0  # a run trained without --calibrate-para
    fit = meta["calibrated"]
    assert fit["from"] == str(ckpt) and fit["pairs"] == 40 and model.heads.para_offset == fit["para_offset"] != 0.0
    pairs = subsample(load_task(c.data_dir, "para", "train", tok), 40, 0)
    assert fit["labels"] == pytest.approx(sum(pairs.labels) / 40)
    assert fit["duplicates_before"] == pytest.approx(float((outputs(raw, pairs) > 0).double().mean()))
    assert fit["duplicates_after"] == pytest.approx(float((outputs(model, pairs) > 0).double().mean()))
    assert all(torch.equal(v, raw.state_dict()[k]) for k, v in model.state_dict().items())  # same weights
    assert torch.allclose(outputs(model, pairs), outputs(raw, pairs) + model.heads.para_offset, atol=1e-5)
    a, b = "How do I cook rice?", "What is the best way to cook rice?"
    raw_p, cal_p = (Scorer.load(f).pair(a, b)["paraphrase"] for f in (ckpt, out))  # the app's scoring
    assert torch.logit(torch.tensor(cal_p, dtype=torch.float64)).item() == pytest.approx(
        torch.logit(torch.tensor(raw_p, dtype=torch.float64)).item() + model.heads.para_offset, abs=1e-4)
    assert main(["calibrate", str(run), "--data-dir", c.data_dir, "--out", str(out)]) == 1
    assert "exists" in capsys.readouterr().err
    assert json.loads((out / "walkless.json").read_text()) == {**meta}  # nothing overwritten


def test_calibrate_refuses_a_checkpoint_without_a_paraphrase_head(tiny_encoder, demo_data, tmp_path, capsys):
    assert main(["train", "--variant", "finetune", "--task", "sst", "--encoder", str(tiny_encoder),
                 "--data-dir", str(demo_data), "--runs-dir", str(tmp_path), "--name", "sst", "--max-train", "16",
                 "--max-dev", "8", "--batch-size", "8", "--threads", "1"]) == 0
    assert main(["calibrate", str(tmp_path / "sst"), "--data-dir", str(demo_data), "--out",
                 str(tmp_path / "out")]) == 1
    assert "has no paraphrase head" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_checkpoints_that_differ_only_in_the_offset_average_to_its_mean(tiny_encoder, demo_data, tmp_path):
    s = prepare(tiny_run(tiny_encoder, demo_data, tmp_path))
    model = build_model(s, torch.device("cpu"))
    saved = []
    for i, b in enumerate((1.0, 3.0)):
        model.heads.para_offset = b
        saved.append(save_model(tmp_path / f"m{i}", model, {"variant": "rrobin-full+rlayer"}, tiny_encoder))
    avg, _, _ = load_checkpoint(average_checkpoints(saved, tmp_path / "avg"))
    assert avg.heads.para_offset == 2.0
    with pytest.raises(ValueError, match="needs labelled paraphrase pairs, got sst"):
        calibrate_para(model, s.train["sst"], 8)
    with pytest.raises(ValueError, match="on 0 pairs: give at least 1"):
        calibrate_para(model, s.train["para"], 0)


def test_calibrate_para_is_refused_by_a_run_without_the_paraphrase_task(tiny_encoder, demo_data, tmp_path, capsys):
    assert main(["train", "--variant", "finetune", "--task", "sst", "--calibrate-para", "100", "--encoder",
                 str(tiny_encoder), "--data-dir", str(demo_data), "--runs-dir", str(tmp_path), "--name", "x"]) == 1
    assert "--calibrate-para 100: fits the paraphrase head, which this run does not train" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
