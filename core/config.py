"""Typed configuration for training, each option defined once: its field holds the type, default, help,
allowed values and range. The CLI's flags (``--batch-size`` for ``batch_size``, ``--smart-lam`` for
``smart.lam``) and the app's launch form are generated from these fields. Imports no torch.
"""

from __future__ import annotations

import functools
import json
import math
import types
import typing
from collections.abc import Callable
from dataclasses import Field, asdict, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from core.runs import RunFolder
from core.tasks import TASK_NAMES
from core.variants import BASES, MODIFIERS, parse_variant, train_tasks

LR_SCHEDULES = ("constant", "linear")  # what ``core.setup.lr_factor`` knows
RROBIN_SUBSETS = ("fixed", "fresh")  # what ``core.schedules`` draws rrobin's examples by
GRAD_SURGERIES = ("none", "pcgrad", "gradvac")  # what ``core.surgery`` does to the summed step's gradients
SST_HEADS, PAIR_INPUTS = ("linear", "leaky", "mlp", "lstm"), ("bi", "cross")  # the heads ``core.multitask`` builds
RUN_RECORD = ("tasks", "encoder_dir", "data_sizes", "torch", "schedule_plan")  # what a run's config.json adds
Check = tuple[Callable[[Any], bool], str]  # (predicate, what it asks for in words)
AT_LEAST_0: Check = (lambda v: v >= 0, "at least 0")
AT_LEAST_1: Check = (lambda v: v >= 1, "at least 1")
POSITIVE: Check = (lambda v: v > 0, "positive")
FRACTION: Check = (lambda v: 0 <= v < 1, "in [0, 1)")
# a learning rate: past 1, AdamW's first step alone moves every weight by about the lr (diverges at once)
LEARNING_RATE: Check = (lambda v: 0 < v <= 1, "in (0, 1]")
FAST_SMART = {"steps": 0, "dropout_off": False, "same_masks": True}  # what ``SmartConfig.fast()`` changes
# The training profiles: what each option left unset (None) becomes (flat names, SMART's as ``smart_*``).
# "walkless": ours, the report's text with its code's bugs corrected; "report-code": what the report's code
# (jelc53/nlp-minibert: multitask_classifier.py, proximateGD.py, bregmanDiv.py) does, choice by choice
# (docs/report-code.md). ``pooling`` None under walkless: what the encoder folder declares.
PROFILES: dict[str, dict[str, Any]] = {
    "walkless": {"pooling": None, "sst_head": "linear", "loss_scale": "mean", "sts_target": "score",
                 "rlayer_sts": "linear", "rrobin_pre": "quora-epoch", "smart_lam": 5.0, "smart_para_kl": "two-class",
                 "smart_sts_bregman": "squared", "smart_teacher_masks": "same", "smart_rlayer_terms": "relational"},
    "report-code": {"pooling": "pooler", "sst_head": "leaky", "loss_scale": "batch-size", "sts_target": "unit",
                    "rlayer_sts": "sigmoid", "rrobin_pre": "para-first", "smart_lam": 10.0,
                    "smart_para_kl": "one-logit", "smart_sts_bregman": "batch-softmax", "smart_teacher_masks": "fresh",
                    "smart_rlayer_terms": "plain"},
}


def opt(default: Any = None, help: str = "", *, choices: tuple | None = None, check: Check | None = None,
        aliases: tuple[str, ...] = (), form: str = "more", label: str = "", factory: Any = None,
        cli: bool = True) -> Any:
    """An option: a dataclass field whose metadata the CLI's flags (and, for training, the launch form) are built
    from. ``form`` is the form's section ("main", "more", "smart" or "" for none); ``aliases`` are old spellings
    of a yes/no option's negative flag (``--summed-step`` for ``--no-per-task-step``); ``cli=False``: no flag.
    """
    meta = {"help": help, "choices": choices, "check": check, "aliases": aliases, "form": form, "label": label,
            "cli": cli}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class SmartConfig:
    """SMART hyperparameters; defaults are the report's (section 4.2). ``fast()`` is the cheaper variant."""

    lam: float | None = opt(None, "weight of the adversarial regularizer (default: 5, the report's text; 10 under "
                                  "--profile report-code, its code's command-line default)", check=AT_LEAST_0,
                            form="smart", label="λ")
    eps: float = opt(1e-5, "radius of the perturbation ball (∞-norm)", check=AT_LEAST_0, form="smart", label="ε")
    sigma: float = opt(1e-5, "std of the initial Gaussian noise", check=AT_LEAST_0, form="smart", label="σ")
    eta: float = opt(1e-3, "ascent step size", check=AT_LEAST_0, form="smart", label="η")
    steps: int = opt(1, "ascent steps K (0: random perturbation only, as R3F)", check=AT_LEAST_0, form="smart")
    beta: float = opt(0.995, "momentum of the Bregman teacher", check=(lambda v: 0 <= v <= 1, "in [0, 1]"),
                      form="smart", label="β")
    mu: float = opt(1.0, "weight of the Bregman term", check=AT_LEAST_0, form="smart", label="μ")
    dropout_off: bool = opt(True, "no dropout while computing the adversarial loss (the report's change)",
                            aliases=("--smart-dropout-on",), form="smart")
    same_masks: bool = opt(False, "dropout on, the perturbed forwards replaying the main forward's masks (no "
                                  "reference forward; implies --no-smart-dropout-off)", form="smart")
    para_kl: str | None = opt(None, "paraphrase terms: two-class (KL of (1 - σ(z), σ(z)), ours) or one-logit (the "
                                    "report's code: a softmax over the single logit, so both SMART terms are always "
                                    "0 for paraphrase); default: the profile's", choices=("two-class", "one-logit"),
                              form="smart")
    sts_bregman: str | None = opt(None, "STS Bregman term: squared (squared error of the scores, ours) or "
                                        "batch-softmax (the report's code: squared error of softmaxes taken across "
                                        "the batch of 0..1 outputs); default: the profile's",
                                  choices=("squared", "batch-softmax"), form="smart")
    teacher_masks: str | None = opt(None, "Bregman teacher's dropout: same (replays the main forward's masks, ours) "
                                          "or fresh (the report's code: new masks, so the term carries dropout "
                                          "noise); default: the profile's", choices=("same", "fresh"), form="smart")
    rlayer_terms: str | None = opt(None, "+rlayer: the pair tasks' SMART forwards through the relational heads "
                                         "(ours) or plain (the report's code: the adversarial term and the teacher "
                                         "through the non-relational heads, [u, v, |u-v|] linear and cosine); "
                                         "default: the profile's", choices=("relational", "plain"), form="smart")

    @classmethod
    def fast(cls, **overrides: Any) -> SmartConfig:
        """The opt-in cheaper SMART (see core/smart.py): the perturbed forward replays the main forward's dropout
        masks instead of a dropout-free reference forward, and the perturbation is the clipped Gaussian noise
        without an ascent step (R3F-style)."""
        return cls(**{**FAST_SMART, **overrides})

    def resolved(self, profile: str = "walkless") -> SmartConfig:
        """A copy with each option left unset (None) set to ``profile``'s choice (``PROFILES``)."""
        chosen = {k.removeprefix("smart_"): v for k, v in PROFILES[profile].items() if k.startswith("smart_")}
        return replace(self, **{k: v for k, v in chosen.items() if getattr(self, k) is None})


@dataclass
class TrainConfig:
    """Everything a training run is made from (a run's ``config.json`` holds it, plus what was resolved)."""

    profile: str = opt("walkless", "whose choices the options left unset take: walkless (ours: the report's text, "
                                   "its code's bugs corrected) or report-code (as the report's code trains, choice "
                                   "by choice; docs/report-code.md)", choices=tuple(PROFILES), form="main")
    variant: str = opt("finetune", f"{', '.join(BASES)}; modifiers {', '.join('+' + m for m in MODIFIERS)} (e.g. "
                                   "rrobin-full+rlayer+smart)", form="main")
    task: str = opt("sst", "task of single-task variants", choices=TASK_NAMES, form="main")
    encoder: str = opt("minilm-l6", "minilm-l6 (packaged) or a Hugging Face BERT folder", form="main")
    data_dir: str | None = opt(None, "folder with the CS224N files (default: the demo data)", form="main")
    runs_dir: str = opt("runs", "where the run folder goes", form="")
    name: str | None = opt(None, "run name (default: generated)", form="")
    epochs: int = opt(10, "epochs (with --resume: the new total)", check=AT_LEAST_1, form="main")
    batch_size: int = opt(64, "examples per task batch", check=AT_LEAST_1, form="main")
    lr: float | None = opt(None, "learning rate (default 1e-3 for pretrain, 1e-5 otherwise, the report's)",
                           check=LEARNING_RATE, form="main")
    seed: int = opt(0, "random seed", form="main")
    dropout: float = opt(0.3, "the task heads' dropout (the report's code: its 'hidden dropout 0.3' is the heads')",
                         check=FRACTION, form="main")
    encoder_dropout: float | None = opt(None, "dropout inside the encoder (hidden and attention); default: the "
                                              "checkpoint's config", check=FRACTION)
    pooling: str | None = opt(None, "sentence embedding: mean, cls (the raw [CLS] state) or pooler (BERT's pooler: "
                                    "dense + tanh on [CLS], the report's code); default: report-code's pooler, else "
                                    "what the encoder folder declares, else cls", choices=("mean", "cls", "pooler"),
                              form="main")
    max_length: int = opt(512, "tokens per sentence (capped at the encoder's positions)", check=AT_LEAST_1)
    weight_decay: float = opt(0.0, "AdamW weight decay", check=AT_LEAST_0)
    clip_grad: float | None = opt(None, "clip the gradient norm at this value; default 1.0 under SMART (the "
                                        "report's code), else off; 0 turns it off", check=AT_LEAST_0)
    lr_schedule: str = opt("constant", "constant (the report) or linear decay to 0 at the last step",
                           choices=LR_SCHEDULES)
    warmup: float = opt(0.0, "fraction of all steps with a linear lr warmup from 0", check=FRACTION)
    ema: float = opt(0.0, "keep an exponential moving average of the weights with this decay (e.g. 0.999); it is "
                          "what is evaluated, kept as best and saved for scoring; 0 = off", check=FRACTION)
    layer_decay: float = opt(1.0, "layer-wise lr decay: the heads get --lr, each encoder layer below this factor "
                                  "more (e.g. 0.9); 1 = off", check=(lambda v: 0 < v <= 1, "in (0, 1]"))
    head_lr: float = opt(1.0, "the task heads' lr as a multiple of --lr (e.g. 10: the heads start from random "
                              "weights, the encoder from a trained one); 1 = the same lr", check=POSITIVE)
    rrobin_subset: str = opt("fixed", "rrobin's examples: fixed (the report's code: one subset of iterations x "
                                      "batch per task for the whole run) or fresh (a new subset every epoch)",
                             choices=RROBIN_SUBSETS)
    sst_passes: int = opt(1, "rrobin-full: SST steps per iteration, each a batch of SST's own size (2: two passes over "
                              "SST per epoch, more SST updates); 1 = the report's", check=AT_LEAST_1)
    sst_lr: float = opt(1.0, "the lr of SST's own optimizer steps as a multiple of the others' (one step per task: "
                              "e.g. 2 trains SST faster without raising the pair tasks' lr); 1 = the same",
                        check=POSITIVE)
    sst_head: str | None = opt(None, "the sentiment heads (SST, CFIMDB): linear (the report's text: dropout + "
                                     "linear), leaky (the report's code: LeakyReLU, dropout, linear), mlp (dropout, "
                                     "dense + tanh, dropout, linear) or lstm (a BiLSTM over all the encoder's token "
                                     "states, its masked mean and max, dropout, linear); default: the profile's "
                                     "(walkless: linear)", choices=SST_HEADS)
    loss_scale: str | None = opt(None, "SST, CFIMDB and Quora losses: mean over the batch (ours) or batch-size (the "
                                       "report's code: summed, divided by --batch-size, so a 3-example rrobin-full "
                                       "SST batch weighs 3/64 of its mean); STS is a mean either way; default: the "
                                       "profile's", choices=("mean", "batch-size"))
    sts_target: str | None = opt(None, "STS loss: score (MSE of 5·cosine against the 0..5 label, ours) or unit (the "
                                       "report's code: cosine, or the +rlayer output, against label / 5: the same "
                                       "MSE / 25); default: the profile's", choices=("score", "unit"))
    rlayer_sts: str | None = opt(None, "+rlayer STS output: linear (bias 2.5, ours) or sigmoid (5·sigmoid, the "
                                       "report's code's sigmoid on the 0..5 scale); default: the profile's",
                                 choices=("linear", "sigmoid"))
    rrobin_pre: str | None = opt(None, "rrobin-pre: quora-epoch (a Quora pass before the first --pre-epochs, then "
                                       "rrobin: the report's text) or para-first (the report's code, branch "
                                       "para-first: every epoch floor(n_quora / B) iterations of Quora, SST and STS "
                                       "joining for their last floor(n / B), batches of B); default: the profile's",
                                 choices=("quora-epoch", "para-first"))
    sst_layers: int = opt(0, "the sentiment tasks (SST, CFIMDB) get their own copy of the encoder's top K layers, "
                             "so their updates leave the top the pair tasks read; 0 = all layers shared (the report)",
                          check=AT_LEAST_0)
    pair_symmetric: bool = opt(False, "pair heads (paraphrase, and STS with rlayer): score each pair in both orders, "
                                      "(u, v) and (v, u), and average the two outputs; bi pair input only")
    calibrate_para: int = opt(0, "before each dev evaluation, fit the paraphrase logit's eval-mode offset on this many "
                                 "training pairs (a fixed sample; dropout makes eval-mode logits run high, so the "
                                 "head calls too many duplicates); saved with the checkpoint; 0 = off (the report)",
                              check=AT_LEAST_0)
    label_smoothing: float = opt(0.0, "label smoothing of the 5-class sentiment losses (SST, CFIMDB); 0 = off",
                                 check=FRACTION)
    pair_input: str = opt("bi", "pair tasks: bi (the report: u and v encoded apart, [u, v, |u-v|] and cosine) or "
                                "cross (one sequence [CLS] a [SEP] b [SEP] per pair, linear heads)",
                          choices=PAIR_INPUTS)
    cfimdb: bool = opt(False, "multitask variants: also train on CFIMDB (binary movie-review sentiment, "
                              "ids-cfimdb-*.csv) as a fourth task with its own head; the best checkpoint is "
                              "still judged on SST, Quora and STS")
    eval_all: bool = opt(False, "single-task variants: also evaluate the other tasks' dev sets with untrained "
                                "heads (the report's Table 2)")
    per_task_step: bool = opt(True, "one optimizer step per task in turn (the report); off: one summed loss and "
                                    "one step per iteration", aliases=("--summed-step",))
    grad_surgery: str = opt("none", "multitask summed step (--no-per-task-step): change the tasks' gradients over "
                                    "the shared weights where they conflict before summing them: pcgrad (project "
                                    "onto the normal plane of a conflicting task's gradient, Yu et al. 2020) or "
                                    "gradvac (raise each pair's cosine to an adaptive target, Wang et al. 2021)",
                            choices=GRAD_SURGERIES)
    gradvac_beta: float = opt(0.01, "--grad-surgery gradvac: the rate of the moving average of each task pair's "
                                    "target cosine", check=(lambda v: 0 <= v <= 1, "in [0, 1]"))
    temperature: float = opt(5.0, "annealed sampling: final T of p_t ∝ n_t^(1/T) (5 = BERT-and-PALs)",
                             check=POSITIVE)
    pre_epochs: int = opt(1, "Quora-only epochs before round-robin, for rrobin-pre", check=AT_LEAST_0)
    eval_batch_size: int = opt(128, "batch size of the dev evaluation", check=AT_LEAST_1)
    log_every: int = opt(10, "steps between logged losses", check=AT_LEAST_1, form="main")
    checkpoint_every: int = opt(0, "steps between checkpoints; 0 = only at each epoch end", check=AT_LEAST_0)
    keep_last: int = opt(2, "step checkpoints kept (the best one is always kept)", check=AT_LEAST_1)
    device: str = opt("auto", "auto, cpu, cuda, cuda:N")
    threads: int | None = opt(None, "CPU threads (default: torch's)", check=AT_LEAST_1, form="main")
    max_train: int | None = opt(None, "cap on training examples per task", check=AT_LEAST_1, form="main")
    max_dev: int | None = opt(None, "cap on dev examples per task", check=AT_LEAST_1, form="main")
    max_steps: int | None = opt(None, "cap on iterations per epoch", check=AT_LEAST_1, form="main")
    bucket: bool = opt(True, "length-bucketed batches (off: batches in file order)")
    fused_adamw: bool = opt(True, "the fused AdamW kernel where the device has one")
    autocast: str | None = opt(None, "mixed precision", choices=("bf16",))
    compile: bool = opt(False, "torch.compile the encoder layers")
    smart: SmartConfig = opt(help="SMART hyperparameters (--smart-*)", factory=SmartConfig, form="smart")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def validate(self) -> TrainConfig:
        """Raise a ``ValueError`` naming the first option out of range (before any run folder is made)."""
        values = self.flat()
        for name, f, kind, _ in option_fields():
            problem = check_value(f, kind, values[name])
            if problem:
                raise ValueError(f"{flag(name)} {values[name]}: must be {problem}")
        variant = parse_variant(self.variant)
        if self.sst_passes != 1 and variant.base != "rrobin-full":
            raise ValueError(f"--sst-passes {self.sst_passes}: only the rrobin-full schedule takes it "
                             f"(variant {self.variant})")
        if self.sst_lr != 1.0 and not self.per_task_step:
            raise ValueError(f"--sst-lr {self.sst_lr}: needs one optimizer step per task (not --no-per-task-step), "
                             f"so that SST's steps are its own")
        if self.grad_surgery != "none":
            self.check_grad_surgery(variant.multitask)
        if self.pair_symmetric and self.pair_input == "cross":
            raise ValueError("--pair-symmetric swaps the sentence embeddings u and v of a pair: it needs "
                             "--pair-input bi (a cross-encoded pair has one embedding)")
        if self.cfimdb and not variant.multitask:
            raise ValueError(f"--cfimdb adds a fourth task to a multitask run: variant {self.variant} trains one "
                             f"task (use --task cfimdb to train CFIMDB alone)")
        if self.calibrate_para and "para" not in train_tasks(variant, self.task):
            raise ValueError(f"--calibrate-para {self.calibrate_para}: fits the paraphrase head, which this run "
                             f"does not train (variant {self.variant}, task {self.task})")
        if self.smart.same_masks and self.smart.dropout_off:
            raise ValueError("--smart-same-masks replays dropout masks, so it needs --no-smart-dropout-off")
        return self

    def resolved(self) -> TrainConfig:
        """A copy with each option left unset (None) that the profile decides set to its choice (``PROFILES``);
        ``pooling`` may stay None (the encoder folder's declaration, ``core.setup``)."""
        values = self.flat()
        chosen = {k: v for k, v in PROFILES[self.profile].items() if not k.startswith("smart_") and values[k] is None}
        return replace(self, **chosen, smart=self.smart.resolved(self.profile))

    def check_grad_surgery(self, multitask: bool) -> None:
        """``--grad-surgery`` changes task gradients against each other within one summed step: it needs several
        tasks and the summed step."""
        if not multitask:
            raise ValueError(f"--grad-surgery {self.grad_surgery}: needs several tasks' gradients; variant "
                             f"{self.variant} trains one task (use a multitask variant such as rrobin)")
        if self.per_task_step:
            raise ValueError(f"--grad-surgery {self.grad_surgery}: needs the tasks' gradients of one step together; "
                             f"add --no-per-task-step (one summed step per iteration): with one optimizer step "
                             f"per task there is nothing to project")

    def grad_clip_norm(self, smart: bool) -> float | None:
        """The max gradient norm to clip at, or None: ``clip_grad``, else 1.0 under SMART as the report's code."""
        if self.clip_grad is None:
            return 1.0 if smart else None
        return self.clip_grad if self.clip_grad > 0 else None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """From a ``to_dict`` tree or a run's ``config.json`` (keys that are not options are ignored)."""
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        if isinstance(d.get("smart"), dict):
            d["smart"] = SmartConfig(**{k: v for k, v in d["smart"].items() if k in SmartConfig.__annotations__})
        return cls(**d)

    def flat(self) -> dict[str, Any]:
        """The options by flat name (SMART's as ``smart_lam``...), as ``option_fields`` lists them."""
        d = self.to_dict()
        return {**{k: v for k, v in d.items() if k != "smart"}, **{f"smart_{k}": v for k, v in d["smart"].items()}}

    def updated(self, flat: dict[str, Any]) -> TrainConfig:
        """A copy with options set from ``{"batch_size": 32, "smart_lam": 1.0}`` (SMART's with ``smart_``)."""
        d = self.to_dict()
        for key, value in flat.items():
            smart = key.removeprefix("smart_")
            if key.startswith("smart_") and smart in d["smart"]:
                d["smart"][smart] = value
            elif key in d and key != "smart":
                d[key] = value
            else:
                raise ValueError(f"{flag(key)}: no such training option")
        return TrainConfig.from_dict(d)


@functools.cache  # the form, its validators and the CLI ask often; reading the type hints costs ~2 ms a time
def option_fields(cls: type = TrainConfig, prefix: str = "") -> tuple[tuple[str, Field, Any, bool], ...]:
    """Every option of ``cls`` as (flat name, field, value type, may be None); a nested dataclass's options
    are named with its field's prefix (``smart_lam``)."""
    out: list[tuple[str, Field, Any, bool]] = []
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        if is_dataclass(hints[f.name]):
            out += option_fields(hints[f.name], f"{prefix}{f.name}_")
            continue
        union = typing.get_origin(hints[f.name]) in (typing.Union, types.UnionType)
        args = [a for a in typing.get_args(hints[f.name]) if a is not type(None)]
        out.append((prefix + f.name, f, args[0] if union else hints[f.name], union))
    return tuple(out)


def parse_option(name: str, text: str, cls: type = TrainConfig) -> Any:
    """The text of option ``name`` of ``cls`` (flat, as ``option_fields``) -> its value; a ``ValueError`` says
    what it must be."""
    _, f, kind, optional = next(o for o in option_fields(cls) if o[0] == name)
    free_text = kind is str and not f.metadata["choices"]  # a name or a folder: "none" is that word, not unset
    value = parse_value(kind, optional, text, none_word=not free_text)
    problem = check_value(f, kind, value)
    if problem:
        raise ValueError(f"{text.strip()!r}: must be {problem}")
    return value


def default_of(f: Field) -> Any:
    return f.default_factory() if callable(f.default_factory) else f.default


def as_text(value: object) -> str:
    """An option's value as the CLI's help and the launch form show it."""
    return "" if value is None else ("yes" if value else "no") if isinstance(value, bool) else str(value)


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_value(f: Field, kind: type, value: Any) -> str | None:
    """What ``value`` of option ``f`` must be when it is not (None when fine; None is fine where allowed)."""
    what = {int: "an integer", float: "a number", bool: "true or false", str: "text"}.get(kind, "a list")
    if value is None:
        return None if f.default is None else what
    if kind in (int, float):  # an int is a fine float, a bool is neither
        typed = not isinstance(value, bool) and isinstance(value, (int, float) if kind is float else int)
    else:
        typed = isinstance(value, typing.get_origin(kind) or kind)
    if not typed:
        return what
    if kind is float and not math.isfinite(value):  # inf and nan pass a range check's comparisons or fail it oddly
        return "a finite number"
    choices, check = f.metadata.get("choices"), f.metadata.get("check")
    if choices and value not in choices:
        return "one of " + ", ".join(choices)
    return check[1] if check and not check[0](value) else None


def parse_value(kind: type, optional: bool, text: str, none_word: bool = True) -> Any:
    """Text of an option (the CLI's, the form's) -> its typed value; '' (or 'none', with ``none_word``) is None
    where allowed."""
    text = text.strip()
    if optional and (text == "" or (none_word and text.lower() == "none")):
        return None
    if typing.get_origin(kind) is tuple:  # comma-separated
        return tuple(parse_value(typing.get_args(kind)[0], False, t) for t in text.split(",") if t.strip())
    if kind is bool:
        if text.lower() not in ("true", "false", "yes", "no", "1", "0", "on", "off"):
            raise ValueError(f"{text!r}: must be yes or no")
        return text.lower() in ("true", "yes", "1", "on")
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"{text!r}: must be {'an integer' if kind is int else 'a number'}") from None


def read_config_file(path: str | Path) -> TrainConfig:
    """Options from a JSON file: ``TrainConfig.to_dict()``'s tree, or a run's ``config.json`` (then the new run
    goes beside that run, under a new name). A clear ``ValueError`` names the file and the bad key."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except OSError as e:
        raise ValueError(f"--config {path}: cannot read it ({e.strerror or e})") from e
    except json.JSONDecodeError as e:
        raise ValueError(f"--config {path}: not JSON (line {e.lineno}: {e.msg})") from e
    if not isinstance(raw, dict) or not isinstance(raw.get("smart", {}), dict):
        raise ValueError(f"--config {path}: not an object of training options")
    unknown = sorted({*raw} - {*TrainConfig().to_dict(), *RUN_RECORD}) + sorted(
        f"smart.{k}" for k in {*raw.get("smart", {})} - {*SmartConfig.__annotations__})
    if unknown:
        raise ValueError(f"--config {path}: unknown option {', '.join(unknown)}")
    if RunFolder(path.parent).status_file.is_file():  # a run's own config.json: "a new run from this one"
        raw = {**raw, "name": None, "runs_dir": str(path.parent.parent.absolute())}
    return TrainConfig.from_dict(raw)
