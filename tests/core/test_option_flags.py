"""Training options as flags and config files: every option set by the flag of its name and by a file, values out of range refused before a run exists, step losses to train.log only."""

from __future__ import annotations

import json

import pytest
from support.options import other_values

from core.cli import build_parser, main, train_config
from core.config import TrainConfig, read_config_file


@pytest.mark.parametrize("key,text,value,msg", [("epochs", "-1", -1, "--epochs -1: must be at least 1"),
                                                ("dropout", "1.5", 1.5, "--dropout 1.5: must be in [0, 1)"),
                                                ("warmup", "1", 1.0, "--warmup 1.0: must be in [0, 1)"),
                                                ("pair_input", "tri", "tri", "--pair-input tri: must be one of bi, cross"),
                                                ("batch_size", "x", "32", "--batch-size 32: must be an integer")])
def test_options_out_of_range_are_refused_before_a_run_exists(tmp_path, capsys, key, text, value, msg):
    flag = "--" + key.replace("_", "-")
    with pytest.raises(SystemExit) as exit_:  # a flag: argparse's usage error
        main(["train", "--runs-dir", str(tmp_path / "runs"), flag, text])
    assert exit_.value.code == 2 and f"argument {flag}: '{text}': must be" in capsys.readouterr().err
    config = tmp_path / "c.json"  # a value from a --config file
    config.write_text(json.dumps({key: value}))
    assert main(["train", "--runs-dir", str(tmp_path / "runs"), "--config", str(config)]) == 1
    assert msg in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_step_losses_go_to_train_log_but_not_to_the_console(tiny_encoder, demo_data, tmp_path, capsys):
    # The app's Monitor tails train.log: it should show step losses, not only epoch lines; the CLI console
    # keeps its progress bar free of them.
    code = main(["train", "--variant", "finetune", "--task", "sst", "--encoder", str(tiny_encoder), "--data-dir",
                 str(demo_data), "--runs-dir", str(tmp_path), "--name", "steps", "--max-train", "16",
                 "--max-dev", "8", "--batch-size", "4", "--log-every", "2", "--epochs", "1"])
    assert code == 0
    text = (tmp_path / "steps" / "train.log").read_text()
    assert "step 2: sst loss " in text and "step 4: sst loss " in text
    out = capsys.readouterr()
    assert "sst loss" not in out.out + out.err


def test_every_training_option_is_set_by_the_flag_of_its_name_and_by_a_config_file(tmp_path):
    """One source of truth: each field of TrainConfig/SmartConfig is a flag of the same name (``smart_lam`` is
    ``--smart-lam``), and a JSON file of the options (a run's config.json) gives them all back."""
    parser, values = build_parser(), other_values()
    assert len(values) == 68  # 59 + issue 38: --profile and the eight per-choice options it sets
    for name, value in values.items():
        flag = "--" + name.replace("_", "-")
        args = [flag if value else f"--no-{flag[2:]}"] if isinstance(value, bool) else [flag, str(value)]
        # --sst-passes: only rrobin-full takes it; --cfimdb: only multitask variants; --calibrate-para: Quora's
        args += ["--variant", "rrobin-full"] if name in ("sst_passes", "cfimdb", "calibrate_para") else []
        args += ["--variant", "rrobin", "--no-per-task-step"] if name == "grad_surgery" else []  # a summed step
        assert train_config(parser.parse_args(["train", *args])).flat()[name] == value, flag
    config = TrainConfig().updated(values)
    (tmp_path / "c.json").write_text(json.dumps(config.to_dict()))
    assert read_config_file(tmp_path / "c.json") == config

