"""What a training run is built from: the variant, encoder and tokenized data (``prepare``), the model, the
optimizer and its learning-rate schedule, and the run's ``config.json``."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import nn

from core.config import LR_SCHEDULES, TrainConfig
from core.data import TaskData, demo_data_dir, load_task
from core.encoders import default_pooling, load_pretrained, load_tokenizer, read_bert_config, resolve_encoder
from core.multitask import HeadConfig, MultitaskBert
from core.runs import RunFolder, write_json_atomic
from core.schedules import SCHEDULES, ScheduleOptions, make_plan, plan_steps
from core.variants import MULTITASK, Variant, judged_tasks, parse_variant, train_tasks, variant_defaults

log = logging.getLogger("walkless.train")


def default_lr(variant: Variant) -> float:
    return float(variant_defaults(variant)["lr"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def subsample(data: TaskData, n: int | None, seed: int) -> TaskData:
    """The first ``n`` examples of a fixed shuffle (short runs on big data)."""
    if n is None or n >= len(data):
        return data
    return data.select(sorted(random.Random(seed).sample(range(len(data)), n)))


@dataclass
class Setup:
    """Everything a training run is built from."""

    config: TrainConfig
    variant: Variant
    tasks: tuple[str, ...]
    encoder_dir: Path
    data_dir: Path
    tokenizer: object
    train: dict[str, TaskData] = field(default_factory=dict)
    dev: dict[str, TaskData] = field(default_factory=dict)
    lr: float = 0.0  # derived by ``resolve``: --lr, else the variant's default
    clip: float | None = None  # derived: the gradient norm clipped at (None: no clipping)
    total_steps: int = 0  # derived: task steps of the whole run (the lr schedule's length)

    @property
    def eval_tasks(self) -> tuple[str, ...]:
        """The dev sets evaluated each epoch (and the heads built): the trained tasks, plus with ``eval_all`` on a
        single-task variant the other multitask ones (the report's Table 2 rows, untrained heads at their init)."""
        if not (self.config.eval_all and not self.variant.multitask):
            return self.tasks
        return self.tasks + tuple(t for t in MULTITASK if t not in self.tasks)

    @property
    def judged_tasks(self) -> tuple[str, ...]:
        """The tasks whose dev metrics pick the best checkpoint (``core.variants.judged_tasks``)."""
        return judged_tasks(self.variant, self.tasks)


def prepare(config: TrainConfig) -> Setup:
    """Parse the variant, find encoder and data, tokenize every split once, and ``resolve`` what the options
    leave open. ``config`` was checked (``TrainConfig.validate``) where it was read: the CLI's flags or --config
    file, a resumed run's config.json, a Table 2 row, the app's launch form. The options left unset take the
    profile's choices here (``TrainConfig.resolved``; the pooling, when still unset, the encoder folder's), so the
    Setup's config (and the run's config.json) holds every choice made."""
    config = config.resolved()
    variant = parse_variant(config.variant)
    tasks = train_tasks(variant, config.task, config.cfimdb)
    encoder_dir = resolve_encoder(config.encoder)
    config = replace(config, pooling=config.pooling or default_pooling(encoder_dir))
    max_len = config.max_length
    positions = read_bert_config(encoder_dir).max_position_embeddings
    if max_len > positions:
        log.warning("--max-length %d: the encoder has %d positions; using %d", max_len, positions, positions)
        max_len = positions
    data_dir = Path(config.data_dir) if config.data_dir else demo_data_dir()
    tok = load_tokenizer(encoder_dir)
    setup = Setup(config, variant, tasks, encoder_dir, data_dir, tok)
    for split, names, cap in (("train", tasks, config.max_train), ("dev", setup.eval_tasks, config.max_dev)):
        for t in names:
            getattr(setup, split)[t] = subsample(load_task(data_dir, t, split, tok, max_len), cap, config.seed)
    return resolve(setup)


def resolve(setup: Setup) -> Setup:
    """Derive, once, what the options leave to the variant and the data (the trainer and ``config.json`` read
    them from the Setup): the learning rate, the gradient clipping and the planned steps."""
    c = setup.config
    setup.lr = c.lr if c.lr is not None else default_lr(setup.variant)
    setup.clip = c.grad_clip_norm(setup.variant.smart)
    setup.total_steps = planned_steps(setup)
    return setup


def build_model(setup: Setup, device: torch.device) -> MultitaskBert:
    c = setup.config
    # The encoder keeps its checkpoint's dropout unless --encoder-dropout says otherwise; --dropout is the heads'.
    p = c.encoder_dropout
    dropout = {} if p is None else {"hidden_dropout_prob": p, "attention_probs_dropout_prob": p}
    bert = load_pretrained(setup.encoder_dir, **dropout)
    plain = setup.variant.rlayer and setup.variant.smart and c.smart.rlayer_terms == "plain"
    heads = HeadConfig(tasks=setup.eval_tasks, pooling=c.pooling or default_pooling(setup.encoder_dir),
                       dropout=c.dropout, rlayer=setup.variant.rlayer, pair_input=c.pair_input,
                       sst_head=c.sst_head or "linear", pair_symmetric=c.pair_symmetric, sst_layers=c.sst_layers,
                       rlayer_sts=c.rlayer_sts or "linear", plain_pair_heads=plain)
    model = MultitaskBert(bert, heads)
    if setup.variant.base == "pretrain":
        model.freeze_encoder()
    if c.compile:  # per layer, in place (parameter names unchanged); the packing index stays eager
        for layer in [*model.bert.encoder.layer, *(model.sst_top or [])]:
            layer.compile(dynamic=True)
    return model.to(device)


def choice_notes(setup: Setup, model: MultitaskBert) -> list[str]:
    """Lines for the run's log: the profile, and where the sentence embedding comes from (with the pooler: whether
    the encoder's checkpoint held its weights or a randomly initialised pooler is used)."""
    c = setup.config
    notes = [f"profile {c.profile}: pooling {c.pooling}, sst head {c.sst_head}, loss scale {c.loss_scale}, "
             f"sts target {c.sts_target}, rlayer sts {c.rlayer_sts}, rrobin-pre {c.rrobin_pre}"]
    if setup.variant.smart:
        s = c.smart
        notes.append(f"SMART: λ {s.lam}, paraphrase KL {s.para_kl}, STS Bregman {s.sts_bregman}, teacher masks "
                     f"{s.teacher_masks}, +rlayer terms {s.rlayer_terms}")
    if c.pooling == "pooler":
        if model.bert.pooler_pretrained:
            notes.append(f"sentence embedding: BERT's pooler (dense + tanh on [CLS]), pooler.dense from "
                         f"{setup.encoder_dir}")
        else:
            notes.append(f"sentence embedding: BERT's pooler (dense + tanh on [CLS]); {setup.encoder_dir} has no "
                         f"pooler weights, so a randomly initialised pooler (normal, std 0.02; bias 0) is used and "
                         f"trained")
    return notes


def planned_steps(setup: Setup) -> int:
    """Task steps of the whole run (``Trainer.step`` at the end; for the learning-rate schedule), from the plans'
    shapes."""
    c = setup.config
    lengths = {t: d.lengths for t, d in setup.train.items()}
    o = replace(ScheduleOptions.from_config(c), bucket=False)
    plans = (make_plan(setup.variant.base, lengths, e, random.Random(0), o) for e in range(1, c.epochs + 1))
    return max(1, sum(plan_steps(plan[: c.max_steps or None]) for plan in plans))


def lr_factor(step: int, total: int, warmup: float, schedule: str) -> float:
    """Multiplier of the base learning rate after ``step`` of ``total`` task steps: a linear warmup over
    the first ``warmup`` fraction, then constant or a linear decay to 0 at the last step."""
    n_warm = int(warmup * total)
    if step < n_warm:
        return (step + 1) / n_warm
    if schedule == "linear":
        return max(0.0, (total - step) / max(1, total - n_warm))
    if schedule != "constant":
        raise ValueError(f"lr schedule {schedule!r}: choose {' or '.join(LR_SCHEDULES)}")
    return 1.0


def layer_depth(name: str, n_layers: int, sst_layers: int = 0) -> int:
    """Depth of a parameter for layer-wise lr decay: embeddings 0, encoder layer i at i + 1, the sentiment tasks'
    copy ``sst_top.j`` of the top ``sst_layers`` at the depth of the layer it copies, the rest (pooler, heads)
    n_layers + 1."""
    if name.startswith("bert.embeddings."):
        return 0
    if name.startswith("bert.encoder.layer."):
        return int(name.split(".")[3]) + 1
    if name.startswith("sst_top."):
        return n_layers - sst_layers + int(name.split(".")[1]) + 1
    return n_layers + 1


def make_optimizer(model: MultitaskBert, c: TrainConfig, lr: float, device: torch.device) -> torch.optim.AdamW:
    """AdamW over the trainable parameters; with ``layer_decay`` < 1 or ``head_lr`` != 1 one group per depth:
    the heads get ``lr * head_lr``, each encoder depth ``lr * layer_decay ** (top - depth)`` (the embeddings the
    smallest). Each group keeps its ``base_lr`` for the schedule."""
    n = model.config.num_hidden_layers
    split, top = c.layer_decay != 1.0 or c.head_lr != 1.0, n + 1
    groups: dict[int, list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            depth = layer_depth(name, n, model.heads.sst_layers) if split else top  # unsplit: one group at lr
            groups.setdefault(depth, []).append(p)
    fused = c.fused_adamw and device.type in ("cuda", "cpu")
    rates = {d: lr * (c.head_lr if d == top else c.layer_decay ** (top - d)) for d in groups}
    param_groups = [{"params": groups[d], "lr": rates[d], "base_lr": rates[d]} for d in sorted(groups)]
    return torch.optim.AdamW(param_groups, lr=lr, weight_decay=c.weight_decay, fused=fused)


def write_run_config(run_dir: Path, setup: Setup) -> None:
    """``config.json``: the TrainConfig and what the run resolved from it (``lr``, folders, data sizes,
    threads, what an epoch of its schedule looks like)."""
    sizes = {t: len(setup.train[t]) for t in setup.tasks}
    plan = SCHEDULES[setup.variant.base].describe(sizes, ScheduleOptions.from_config(setup.config))
    write_json_atomic(RunFolder(run_dir).config_file, {
        **setup.config.to_dict(), "variant": setup.variant.name, "tasks": list(setup.tasks), "lr": setup.lr,
        "encoder_dir": str(setup.encoder_dir), "data_dir": str(setup.data_dir),
        "data_sizes": {t: {"train": n, "dev": len(setup.dev[t])} for t, n in sizes.items()},
        "torch": torch.__version__, "threads": torch.get_num_threads(), "schedule_plan": plan})
