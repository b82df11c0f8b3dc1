"""``--grad-surgery pcgrad|gradvac``: the projections on gradients whose conflicts are known by hand, the task
gradients put back into ``.grad``, refusals, training with each option, and the default step unchanged."""

from __future__ import annotations

import json
import math

import pytest
import torch
from test_variants import make_trainer, relative_loss, train_set_losses, train_steps

from core.checkpoint import pack_state, unpack_state
from core.cli import main
from core.config import TrainConfig
from core.surgery import GradSurgery, pcgrad_one, vaccinate

T = torch.tensor


def test_pcgrad_projects_conflicting_gradients_as_by_hand():
    # g_a·g_b = -1: a loses its component along b, b its component along a
    # a' = (1,0) - (-1/2)(-1,1) = (0.5,0.5);  b' = (-1,1) - (-1/1)(1,0) = (0,1);  sum (0.5,1.5)
    s = GradSurgery("pcgrad")
    assert torch.allclose(s.combine({"a": T([1.0, 0.0]), "b": T([-1.0, 1.0])}), T([0.5, 1.5]))
    assert torch.equal(pcgrad_one(T([1.0, 0.0]), [T([-1.0, 1.0])]), T([0.5, 0.5]))
    # no conflict (dot >= 0): the plain sum
    assert torch.equal(s.combine({"a": T([1.0, 0.0]), "b": T([1.0, 1.0])}), T([2.0, 1.0]))
    assert torch.equal(s.combine({"a": T([1.0, 0.0]), "b": T([0.0, 3.0])}), T([1.0, 3.0]))


def test_pcgrad_takes_the_other_tasks_in_random_order():
    # three tasks: a's projection depends on the order of b and c
    # b then c: (1,0,0) -> (0.5,0.5,0) -> dot with c -0.5 -> (0.25,0.5,0.25); c then b: (0.25,0.25,0.5)
    a, b, c = T([1.0, 0.0, 0.0]), T([-1.0, 1.0, 0.0]), T([-1.0, 0.0, 1.0])
    assert torch.allclose(pcgrad_one(a, [b, c]), T([0.25, 0.5, 0.25]))
    assert torch.allclose(pcgrad_one(a, [c, b]), T([0.25, 0.25, 0.5]))
    s = GradSurgery("pcgrad", seed=3)
    sums = {tuple(s.combine({"a": a, "b": b, "c": c}).tolist()) for _ in range(20)}
    assert len(sums) > 1  # the orders vary from step to step


def test_gradvac_with_a_zero_target_is_pcgrad_and_reaches_its_target():
    torch.manual_seed(0)
    pc, gv = GradSurgery("pcgrad", seed=1), GradSurgery("gradvac", beta=0.0, seed=1)  # β = 0: the target stays 0
    for _ in range(10):
        grads = {t: torch.randn(6) for t in ("sst", "para", "sts")}
        assert torch.allclose(pc.combine(grads), gv.combine(grads), atol=1e-6)
    # a target of 0.5: orthogonal gradients are turned until their cosine is 0.5; above it nothing moves
    g, cos = vaccinate(T([1.0, 0.0]), T([0.0, 2.0]), 0.5)
    assert cos == 0.0 and float(torch.nn.functional.cosine_similarity(g, T([0.0, 2.0]), dim=0)) == pytest.approx(0.5)
    same, _ = vaccinate(T([1.0, 1.0]), T([0.0, 2.0]), 0.5)  # cosine 0.707 >= 0.5
    assert torch.equal(same, T([1.0, 1.0]))


def test_gradvac_keeps_a_moving_average_of_each_pairs_cosine():
    s = GradSurgery("gradvac", beta=0.5)
    s.combine({"a": T([1.0, 0.0]), "b": T([-1.0, 1.0])})
    # cos(a, b) = -1/√2; target 0 + 0.5 (-1/√2 - 0). b sees a's original gradient: the same cosine
    assert s.targets["a>b"] == pytest.approx(-0.5 / math.sqrt(2)) and s.targets["b>a"] == pytest.approx(-0.5 / math.sqrt(2))
    # state through JSON (as a checkpoint keeps it): the same next results
    tensors: dict = {}
    tree = json.loads(json.dumps(pack_state(s.state_dict(), "surgery", tensors)))
    t = GradSurgery("gradvac", beta=0.5)
    t.load_state_dict(unpack_state(tree, tensors))
    grads = {x: torch.randn(4, generator=torch.Generator().manual_seed(i)) for i, x in enumerate("abc")}
    assert torch.equal(s.combine(grads), t.combine(grads)) and s.targets == t.targets


def test_backward_puts_the_surgery_on_shared_weights_and_each_heads_own_gradient():
    w = torch.nn.Parameter(torch.zeros(2))  # shared: task a's gradient (1, 0), task b's (-1, 1)
    ha, hb = torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(1))  # the heads
    la = w @ T([0.5, 0.0]) + ha.sum()
    lb = w @ T([-1.0, 1.0]) + 2 * hb.sum()
    # task a twice in the iteration (two batches): its losses add up first
    GradSurgery("pcgrad").backward(["a", "b", "a"], [la, lb, la], [w, ha, hb])
    assert torch.allclose(w.grad, T([0.5, 1.5]))
    assert torch.equal(ha.grad, T([2.0, 2.0, 2.0])) and torch.equal(hb.grad, T([2.0]))
    # a weight two of three tasks reach (as the relational layer): the surgery among those two only
    w, r = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    losses = [w @ T([1.0, 0.0]), w @ T([1.0, 1.0]) + r @ T([1.0, 0.0]), w @ T([0.0, 1.0]) + r @ T([-1.0, 1.0])]
    GradSurgery("pcgrad").backward(["sst", "para", "sts"], losses, [w, r])
    assert torch.equal(w.grad, T([2.0, 2.0]))  # no conflict on w
    assert torch.allclose(r.grad, T([0.5, 1.5]))  # para (1,0) and sts (-1,1) conflict on r; sst has no say


def test_refused_for_one_task_and_for_one_step_per_task(tiny_encoder, demo_data, tmp_path, capsys):
    with pytest.raises(ValueError, match="trains one task"):
        TrainConfig(variant="finetune", grad_surgery="pcgrad", per_task_step=False).validate()
    with pytest.raises(ValueError, match="add --no-per-task-step"):
        TrainConfig(variant="rrobin", grad_surgery="gradvac").validate()
    TrainConfig(variant="rrobin-full+smart", grad_surgery="gradvac", per_task_step=False).validate()
    assert main(["train", "--variant", "rrobin", "--grad-surgery", "pcgrad", "--encoder", str(tiny_encoder),
                 "--runs-dir", str(tmp_path)]) == 1
    assert "--grad-surgery pcgrad: needs the tasks' gradients of one step together" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # refused before a run folder was made
    assert main(["train", "--variant", "rrobin", "--grad-surgery", "pcgrad", "--summed-step", "--encoder",
                 str(tiny_encoder), "--runs-dir", str(tmp_path), "--name", "pc", "--epochs", "1", "--batch-size", "4",
                 "--max-train", "8", "--max-dev", "4", "--max-steps", "2", "--threads", "1"]) == 0
    assert json.loads((tmp_path / "pc" / "config.json").read_text())["grad_surgery"] == "pcgrad"


class PlainSum(GradSurgery):
    """The surgery's machinery (a gradient per task, put back) with no change: the summed step's gradient."""

    def combine(self, grads: dict[str, torch.Tensor], group: str = "") -> torch.Tensor:
        return torch.stack(list(grads.values())).sum(0)


def recorded_losses(trainer) -> list[float]:
    return [float(loss) for _, _, loss, _ in trainer._pending]


def test_default_summed_step_is_unchanged_and_task_gradients_add_up_to_it(tiny_encoder, demo_data, tmp_path):
    runs = []
    for name, how in (("new", "iteration"), ("old", "by hand"), ("plain", "plain surgery")):
        (tmp_path / name).mkdir()
        t = make_trainer("rrobin-full", tiny_encoder, demo_data, tmp_path / name, per_task_step=False, epochs=1)
        assert t.surgery is None
        if how == "plain surgery":
            t.surgery = PlainSum("pcgrad")
        torch.manual_seed(0)
        for it in t.plan(1)[:4]:
            if how == "by hand":  # the summed step as it was before --grad-surgery
                losses = t.losses(it)
                losses.sum().backward()
                t.optimizer_step()
                for (task, _), loss in zip(it, losses, strict=True):
                    t.record(task, loss)
            else:
                t.iteration(it)
        runs.append(recorded_losses(t))
    assert len(runs[0]) == 12 and runs[0] == runs[1]  # the default: the same losses to the last digit
    assert runs[2] == pytest.approx(runs[0], rel=1e-5)  # per-task gradients summed: the same steps


@pytest.mark.parametrize("method", ["pcgrad", "gradvac"])
def test_a_multitask_run_with_surgery_learns(method, tiny_encoder, demo_data, tmp_path):
    trainer = make_trainer("rrobin-full+rlayer", tiny_encoder, demo_data, tmp_path, per_task_step=False,
                           grad_surgery=method, gradvac_beta=0.1)
    seen = []
    combine = trainer.surgery.combine
    changed = []

    def watched(grads: dict, group: str) -> torch.Tensor:
        seen.append((group, len(grads)))
        out = combine(grads, group)
        changed.append(not torch.allclose(out, torch.stack(list(grads.values())).sum(0)))
        return out

    trainer.surgery.combine = watched
    before = train_set_losses(trainer)
    train_steps(trainer, 36)  # task steps: 12 summed optimizer steps of 3 tasks
    # every step went through the surgery: the encoder among three tasks, the relational layer the pair tasks
    assert len(seen) == 2 * trainer.step // 3 and set(seen) == {("sst,para,sts", 3), ("para,sts", 2)}
    assert any(changed)  # some task gradients did conflict (or fell below their target) and were changed
    assert relative_loss(before, train_set_losses(trainer)) < 0.93
    if method == "gradvac":
        assert len(trainer.surgery.targets) == 6 + 2 and any(v != 0 for v in trainer.surgery.targets.values())


def test_a_resumed_gradvac_run_matches_an_uninterrupted_one(tiny_encoder, tmp_path):
    from core.runs import read_metrics
    from core.train import resume, train

    cfg = dict(variant="rrobin", per_task_step=False, grad_surgery="gradvac", gradvac_beta=0.5, batch_size=4,
               max_train=12, max_dev=8, lr=1e-3, dropout=0.1, seed=3, log_every=1, threads=1,
               encoder=str(tiny_encoder), runs_dir=str(tmp_path))
    whole = train(TrainConfig(name="whole", epochs=2, **cfg))
    part = train(TrainConfig(name="part", epochs=1, **cfg))
    assert resume(part, epochs=2) == part  # the targets and the order's random state come from the checkpoint

    def losses(run):
        return [(r["step"], r["task"], r["loss"]) for r in read_metrics(run) if r["kind"] == "step"]

    a, b = losses(whole), losses(part)
    assert len(a) == 18 and [x[:2] for x in a] == [x[:2] for x in b]
    assert [x[2] for x in b] == pytest.approx([x[2] for x in a], rel=1e-6, abs=1e-7)
