"""Epoch plans of every schedule: per-task batch counts and sizes follow the documented formulas."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from core.config import TrainConfig
from core.schedules import (
    SCHEDULES,
    ScheduleOptions,
    annealed_alpha,
    make_plan,
    plan_steps,
    rrobin_full_sizes,
    sampling_probabilities,
)
from core.variants import BASES, REPORT_VARIANTS, parse_variant


def fake_lengths(sizes: dict[str, int]) -> dict[str, list[int]]:
    rng = random.Random(1)
    return {t: [rng.randint(5, 60) for _ in range(n)] for t, n in sizes.items()}


def per_task(plan) -> tuple[Counter, dict[str, set[int]]]:
    """(number of batches per task, set of batch sizes per task)."""
    counts, sizes = Counter(), {}
    for it in plan:
        for task, idx in it:
            counts[task] += 1
            sizes.setdefault(task, set()).add(len(idx))
    return counts, sizes


SIZES = {"sst": 300, "para": 1000, "sts": 130}


def test_variant_names_parse_and_round_trip():
    for name in (*REPORT_VARIANTS, "rrobin-full+rlayer+smart", "proportional", "annealed", "annealed+smart"):
        assert parse_variant(name).name == name
    assert parse_variant("rrobin-full+smart+rlayer").name == "rrobin-full+rlayer+smart"
    for bad, msg in [("rrobin-half", "unknown base"), ("rrobin+fast", "unknown modifier"),
                     ("finetune+rlayer", "multitask"), ("pretrain+smart", "pretrain"),
                     ("rrobin+smart+smart", "repeated")]:
        with pytest.raises(ValueError, match=msg):
            parse_variant(bad)


def test_rrobin_equal_batches_floor_sts_over_batch():
    B = 16
    plan = make_plan("rrobin", fake_lengths(SIZES), 1, random.Random(0), ScheduleOptions(B))
    n = 130 // B  # floor(len(sts_train) / batch)
    assert len(plan) == n
    assert all([t for t, _ in it] == ["sst", "para", "sts"] for it in plan)
    counts, sizes = per_task(plan)
    assert counts == Counter({"sst": n, "para": n, "sts": n})
    assert sizes == {"sst": {B}, "para": {B}, "sts": {B}}
    # Within an epoch no example repeats while a task has enough data.
    for t in SIZES:
        idx = [i for it in plan for task, b in it if task == t for i in b]
        assert len(idx) == len(set(idx)) == n * B


def test_rrobin_pre_quora_pass_then_rrobin_for_pre_epochs():
    B = 16
    lengths = fake_lengths(SIZES)
    n_rr = 130 // B
    n_pre = -(-1000 // B)  # every Quora example once, last (short) batch kept
    o = ScheduleOptions.from_config(TrainConfig(batch_size=B, pre_epochs=2, epochs=4))
    rng = random.Random(0)
    for epoch in (1, 2, 3, 4):
        plan = make_plan("rrobin-pre", lengths, epoch, rng, o)
        pre = n_pre if epoch <= 2 else 0
        assert len(plan) == pre + n_rr
        head = plan[:pre]
        assert all(len(it) == 1 and it[0][0] == "para" for it in head)
        if pre:
            assert sorted(i for it in head for i in it[0][1]) == list(range(1000))
        assert all([t for t, _ in it] == ["sst", "para", "sts"] for it in plan[pre:])
    assert len(make_plan("rrobin-pre", lengths, 1, rng, ScheduleOptions(B, pre_epochs=0))) == n_rr


def test_rrobin_full_formula_and_the_reports_sizes():
    # The report's data: Quora 141,506, SST 8,544, STS 6,040 at B=64 -> 64 / 3 / 2 per iteration.
    n, sizes = rrobin_full_sizes({"sst": 8544, "para": 141506, "sts": 6040}, 64)
    assert (n, sizes) == (141506 // 64, {"sst": 3, "para": 64, "sts": 2})
    B = 32
    plan = make_plan("rrobin-full", fake_lengths(SIZES), 1, random.Random(0), ScheduleOptions(B))
    n = 1000 // B
    b_sst, b_sts = max(1, B * 300 // 1000), max(1, B * 130 // 1000)
    assert (b_sst, b_sts) == (9, 4)
    assert len(plan) == n
    counts, sizes = per_task(plan)
    assert counts == Counter({"sst": n, "para": n, "sts": n})
    assert sizes == {"sst": {b_sst}, "para": {B}, "sts": {b_sts}}
    para = [i for it in plan for t, b in it if t == "para" for i in b]
    assert len(set(para)) == len(para) == n * B  # the whole Quora set (up to one partial batch)
    # A tiny task still gets one example per iteration.
    assert rrobin_full_sizes({"sst": 3, "para": 1000, "sts": 10}, 16)[1]["sst"] == 1


def test_proportional_step_count_and_frequencies():
    B = 8
    lengths = fake_lengths(SIZES)
    plan = make_plan("proportional", lengths, 1, random.Random(0), ScheduleOptions(B))
    steps = sum(SIZES.values()) // B
    assert plan_steps(plan) == steps
    assert all(len(it) == 3 for it in plan[:-1])
    counts, sizes = per_task(plan)
    assert all(s == {B} for s in sizes.values())
    for t, n in SIZES.items():  # p_t ∝ n_t, so about n_t / B batches each
        expected = steps * n / sum(SIZES.values())
        assert abs(counts[t] - expected) < 4 * expected ** 0.5 + 1, (t, counts[t], expected)


def test_annealed_probabilities_and_schedule():
    assert annealed_alpha(1, 5, 5.0) == 1.0
    assert annealed_alpha(5, 5, 5.0) == pytest.approx(0.2)  # BERT and PALs: 1 - 0.8 (e-1)/(E-1)
    assert annealed_alpha(3, 5, 5.0) == pytest.approx(0.6)
    assert annealed_alpha(1, 1, 5.0) == 1.0
    with pytest.raises(ValueError, match="temperature"):
        annealed_alpha(1, 2, 0.0)
    p = sampling_probabilities(SIZES, 0.5)
    z = sum(n ** 0.5 for n in SIZES.values())
    assert p == pytest.approx({t: n ** 0.5 / z for t, n in SIZES.items()})
    assert sampling_probabilities(SIZES, 0.0) == pytest.approx({t: 1 / 3 for t in SIZES})

    B = 4
    lengths = fake_lengths(SIZES)
    o = ScheduleOptions(B, epochs=3, temperature=100.0)  # last epoch nearly uniform
    first = make_plan("annealed", lengths, 1, random.Random(0), o)
    last = make_plan("annealed", lengths, 3, random.Random(0), o)
    steps = sum(SIZES.values()) // B
    assert plan_steps(first) == plan_steps(last) == steps
    c1, _ = per_task(first)
    c3, _ = per_task(last)
    assert c3["sts"] > 2 * c1["sts"]  # the small task is upsampled as T grows
    assert c3["para"] < 0.6 * c1["para"]  # p_para: 0.70 -> about 1/3
    # A small task drawn more often than it has batches is cycled, never short of batches.
    assert all(len(b) == B for it in last for _, b in it)


def test_single_task_and_errors():
    plan = make_plan("finetune", {"sst": [5] * 50}, 1, random.Random(0), ScheduleOptions(16))
    assert [len(it[0][1]) for it in plan].count(16) == 3 and plan_steps(plan) == 4
    with pytest.raises(ValueError, match="not available"):
        make_plan("bogus", {"sst": [5]}, 1, random.Random(0), ScheduleOptions(4))
    with pytest.raises(ValueError, match="training examples"):
        make_plan("rrobin", {"sst": [5], "para": [], "sts": [5]}, 1, random.Random(0), ScheduleOptions(4))
    with pytest.raises(ValueError, match="at least 1"):
        ScheduleOptions(0)
    assert tuple(SCHEDULES) == BASES  # one schedule per variant base


def test_describe_schedule_matches_plans():
    B = 16
    lengths = fake_lengths(SIZES)
    o = ScheduleOptions.from_config(TrainConfig(batch_size=B, epochs=2, pre_epochs=1, temperature=5.0))
    for base in ("rrobin", "rrobin-full", "proportional", "annealed"):
        d = SCHEDULES[base].describe(SIZES, o)
        plan = make_plan(base, lengths, 1, random.Random(0), o)
        assert d["iterations"] == len(plan), base
    d = SCHEDULES["rrobin-pre"].describe(SIZES, o)
    assert d["pre_iterations"] + d["iterations"] == len(make_plan("rrobin-pre", lengths, 1, random.Random(0), o))
    assert SCHEDULES["rrobin-full"].describe(SIZES, ScheduleOptions(B))["batch_sizes"] == {"sst": 4, "para": 16,
                                                                                         "sts": 2}
    ann = SCHEDULES["annealed"].describe(SIZES, o)["probabilities_per_epoch"]
    assert ann[0] == pytest.approx(sampling_probabilities(SIZES), abs=1e-4)
    assert ann[1] == pytest.approx(sampling_probabilities(SIZES, 0.2), abs=1e-4)


@pytest.mark.parametrize("passes", [2, 3])
def test_rrobin_full_sst_passes_adds_sst_steps_between_the_other_tasks(passes):
    # SST 297 = 33 batches of b_sst = 9 at B=32: one pass (31 x 9 = 279) misses some SST examples, two cover all.
    sizes, B = {"sst": 297, "para": 1000, "sts": 130}, 32
    lengths = fake_lengths(sizes)
    n, per_task_size = rrobin_full_sizes(sizes, B)
    b_sst = per_task_size["sst"]
    assert (n, b_sst) == (31, 9)
    one = make_plan("rrobin-full", lengths, 1, random.Random(0), ScheduleOptions(B))
    plan = make_plan("rrobin-full", lengths, 1, random.Random(0), ScheduleOptions(B, sst_passes=passes))
    assert len(plan) == len(one) == n  # the anchor still sets the iterations
    order = {2: ["sst", "para", "sst", "sts"], 3: ["sst", "para", "sst", "sts", "sst"]}[passes]
    assert all([t for t, _ in it] == order for it in plan)
    counts, batch_sizes = per_task(plan)
    counts_one, batch_sizes_one = per_task(one)
    assert counts == Counter({"sst": passes * n, "para": n, "sts": n})
    assert counts_one == Counter({"sst": n, "para": n, "sts": n})
    assert batch_sizes == batch_sizes_one == {"sst": {b_sst}, "para": {B}, "sts": {per_task_size["sts"]}}
    assert plan_steps(plan) == plan_steps(one) + (passes - 1) * n == (passes + 2) * n
    sst = [i for it in plan for t, b in it if t == "sst" for i in b]
    assert passes * n * b_sst >= sizes["sst"] and set(sst) == set(range(sizes["sst"]))
    assert set(i for it in one for t, b in it if t == "sst" for i in b) != set(range(sizes["sst"]))
    para = [i for it in plan for t, b in it if t == "para" for i in b]
    assert len(set(para)) == len(para) == n * B  # the anchor is untouched: each Quora example at most once
    d = SCHEDULES["rrobin-full"].describe(sizes, ScheduleOptions(B, sst_passes=passes))
    assert d["sst_passes"] == passes and d["iterations"] == n and d["batch_sizes"] == per_task_size
    assert "sst_passes" not in SCHEDULES["rrobin-full"].describe(sizes, ScheduleOptions(B))


@pytest.mark.parametrize("passes", [1, 2])
def test_planned_steps_count_the_extra_sst_steps(passes):
    from types import SimpleNamespace

    from core.setup import planned_steps
    from core.variants import parse_variant

    lengths = fake_lengths({"sst": 297, "para": 1000, "sts": 130})

    def steps(**kw) -> int:  # planned_steps reads a Setup's config, variant and training lengths only
        c = TrainConfig(variant="rrobin-full", batch_size=32, sst_passes=passes, **kw)
        return planned_steps(SimpleNamespace(config=c, variant=parse_variant(c.variant),
                                             train={t: SimpleNamespace(lengths=v) for t, v in lengths.items()}))

    assert steps(epochs=2) == 2 * 31 * (passes + 2)  # 2 epochs x 31 iterations x (SST passes + para + sts)
    assert steps(epochs=1, max_steps=5) == 5 * (passes + 2)  # --max-steps caps iterations, SST steps and all
