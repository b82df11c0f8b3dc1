"""The benchmark machinery on the tiny encoder and the demo data: fields and formulas, never timings."""

from __future__ import annotations

import json
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from core.bench import BenchConfig, fma_peak, percentile, print_bench, run_bench, train_flops
from core.encoders import load_pretrained
from core.multitask import HeadConfig, MultitaskBert, task_loss


def test_train_flops_matches_counted_matmuls(tiny_encoder):
    """The documented formula equals PyTorch's own count of matmul FLOPs for a forward + backward step
    on a batch without padding (so "useful" and computed FLOPs coincide)."""
    torch.manual_seed(0)
    model = MultitaskBert(load_pretrained(tiny_encoder), HeadConfig(tasks=("sst",)))
    B, L = 3, 7
    ids = torch.randint(1000, 2000, (B, L))
    mask = torch.ones(B, L, dtype=torch.long)
    with FlopCounterMode(display=False) as fc:
        out = model.head("sst", model.bert.embed(ids), mask)
        task_loss("sst", out, torch.tensor([0, 1, 2])).backward()
    expected = train_flops([L] * B, model.config, model.sst_classifier.weight.numel())
    assert fc.get_total_flops() == expected


def test_percentile():
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert percentile(list(map(float, range(101))), 0.95) == 95.0


def test_bench_writes_expected_json(tiny_encoder, demo_data, tmp_path, capsys):
    out = tmp_path / "bench.json"
    cfg = BenchConfig(encoder=str(tiny_encoder), data_dir=str(demo_data), batch_size=8, batches=2, rounds=2,
                      warmup=1, smart_batches=1, latency_samples=3, max_dev=8, threads=1, peak_sizes=(128, 256), out=str(out))
    threads = torch.get_num_threads()
    res = run_bench(cfg, command="walkless bench (test)")
    assert torch.get_num_threads() == threads  # restored
    saved = json.loads(out.read_text())
    assert saved["command"] == "walkless bench (test)"
    assert saved["train"]["sentences"] == 16 and saved["train"]["steps_per_round"] == 2
    assert len(saved["train"]["rounds"]) == 2 and saved["train"]["steal_s"] >= 0
    for side in ("ours", "expert", "naive"):
        for k in ("tokens_per_s", "sentences_per_s", "step_ms", "useful_gflops_per_s", "padding_ratio"):
            assert saved["train"][side][k] > 0
        assert 0 < saved["mfu"][side]["measured_peak"]
    # the expert groups by length as we do; the naive loop pads to each file-order batch's longest
    assert saved["train"]["ours"]["padding_ratio"] <= saved["train"]["naive"]["padding_ratio"]
    assert saved["train"]["expert"]["padding_ratio"] <= saved["train"]["naive"]["padding_ratio"]
    assert saved["train"]["speedup"] > 0 and saved["train"]["speedup_naive"] > 0
    assert saved["matmul_peak_gflops"] > 0
    assert {"plain_step_ms", "smart_step_ms", "fast_step_ms", "bregman_step_ms", "ratio", "fast_ratio",
            "bregman_ratio"} <= set(saved["smart"])
    assert saved["smart"]["fast_config"]["same_masks"] and saved["smart"]["fast_config"]["steps"] == 0
    assert saved["smart"]["bregman_config"]["lam"] == 0 and saved["smart"]["bregman_config"]["mu"] > 0
    for k in ("sentence", "pair"):
        assert saved["scoring"][k]["samples"] == 3
        assert 0 < saved["scoring"][k]["median_ms"] <= saved["scoring"][k]["p95_ms"]
        assert saved["scoring"][k]["retimed"] >= 0 and saved["scoring"][k]["raw_p95_ms"] > 0
    assert saved["eval"]["examples"] == {"sst": 8, "para": 8, "sts": 8}
    assert saved["eval"]["full_dev_sets"] is False and saved["targets"]["eval_seconds"]["met"] is None
    assert saved["targets"]["sentence_p95_ms"]["value"] == saved["scoring"]["sentence"]["raw_p95_ms"]
    assert set(saved["targets"]) == {"train_speedup", "mfu_fma", "smart_step_ratio", "smart_fast_step_ratio",
                                     "sentence_p95_ms", "pair_p95_ms", "eval_seconds"}
    assert saved["load_before"] and saved["load_after"] and saved["machine"]["threads"] == 1
    assert res["train"] == saved["train"]
    capsys.readouterr()
    print_bench(res)
    assert "SMART λ 0 step" in capsys.readouterr().out


def test_time_calls_retimes_calls_hit_by_steal():
    """Calls 1 and 3 are slow and the steal counter grows during their first timing: they are timed again,
    the kept figures are the steal-free timings and the raw ones keep the slow first tries. Call 4 is
    stolen every time: it keeps its last timing."""
    from core.bench import time_calls

    state = {"steal": 0.0, "tries": {}}

    def fn(i: int) -> None:
        n = state["tries"][i] = state["tries"].get(i, 0) + 1
        if (i in (1, 3) and n == 1) or i == 4:
            time.sleep(0.03)
            state["steal"] += 0.05

    res = time_calls(fn, 5, steal=lambda: state["steal"], warmup=0)
    assert state["tries"] == {0: 1, 1: 2, 2: 1, 3: 2, 4: 3}
    assert res["retimed"] == 3 and res["steal_s"] == round(0.05 * 5, 2)
    assert res["raw_max_ms"] >= 30 and res["raw_p95_ms"] >= 30
    assert res["median_ms"] < 30 <= res["max_ms"]  # only call 4 stays slow
    assert res["samples"] == 5


def test_fma_peak_reads_the_vector_units_and_clock():
    avx2 = "processor\t: 0\ncpu MHz\t\t: 2600.000\nflags\t\t: fpu sse avx avx2 fma\n"
    assert fma_peak(1, avx2) == {"gflops": 83.2, "cores": 1, "ghz": 2.6, "flop_per_cycle": 32}
    avx512 = "vendor_id\t: GenuineIntel\ncpu MHz\t\t: 2000.0\nflags\t\t: avx avx2 fma avx512f\n"
    assert fma_peak(1, avx512)["gflops"] == 128.0
    zen4 = "vendor_id\t: AuthenticAMD\ncpu family\t: 25\ncpu MHz\t\t: 2000.0\nflags\t\t: avx avx2 fma avx512f\n"
    assert fma_peak(1, zen4)["flop_per_cycle"] == 32  # AVX-512 on two 256-bit pipes
    assert fma_peak(1, "")["gflops"] == 0.0  # nothing known: no theoretical peak (the MFU shows None)


def test_epoch_sample_takes_whole_epoch_grouped_batches(tiny_encoder, demo_data):
    from core.bench import epoch_sample
    from core.data import read_examples
    from core.encoders import load_tokenizer
    from core.tasks import task_file

    examples = read_examples(task_file(demo_data, "sst", "train"), "sst")
    cfg = BenchConfig(batch_size=4, batches=3)
    sample, data = epoch_sample(examples, load_tokenizer(tiny_encoder), cfg)
    assert len(sample) == 12 and len({e.id for e in sample}) == 12
    rows = [e.row for e in sample]
    assert rows == sorted(rows) and rows != [e.row for e in examples[:12]]  # not the file's first 12: grouped batches
