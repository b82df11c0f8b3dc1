"""rrobin's task subsets: fixed (the report's code) or drawn anew each epoch, and rrobin-pre after its Quora pass."""

from __future__ import annotations

import random

import pytest

from core.schedules import ScheduleOptions, make_plan

LENGTHS = {"sst": [5] * 50, "para": [7] * 90, "sts": [6] * 20}


def used(plan, task):
    return {i for it in plan for t, idx in it if t == task for i in idx}


def test_rrobin_fixed_subset_is_the_same_every_epoch_and_as_large_as_the_smallest_task():
    rng = random.Random(0)
    plans = [make_plan("rrobin", LENGTHS, e, rng, ScheduleOptions(4, seed=7)) for e in (1, 2, 3)]
    for task in LENGTHS:
        sets = [used(p, task) for p in plans]
        assert sets[0] == sets[1] == sets[2] and len(sets[0]) == 20  # floor(20 / 4) * 4 unique examples
    assert [it[0][1] for it in plans[0]] != [it[0][1] for it in plans[1]]  # reshuffled each epoch
    other_seed = make_plan("rrobin", LENGTHS, 1, random.Random(0), ScheduleOptions(4, seed=8))
    assert used(other_seed, "para") != used(plans[0], "para")


def test_rrobin_fresh_subset_draws_anew_each_epoch():
    rng = random.Random(0)
    a, b = (make_plan("rrobin", LENGTHS, e, rng, ScheduleOptions(4, rrobin_subset="fresh")) for e in (1, 2))
    assert used(a, "para") != used(b, "para")
    with pytest.raises(ValueError, match="fixed or fresh"):
        ScheduleOptions(4, rrobin_subset="half")


def test_rrobin_pre_uses_the_subset_after_its_full_quora_pass():
    plan = make_plan("rrobin-pre", LENGTHS, 1, random.Random(0), ScheduleOptions(4, seed=1))
    pre = [it for it in plan if len(it) == 1]
    assert used(pre, "para") == set(range(90))
    assert len(used([it for it in plan if len(it) == 3], "para")) == 20

