"""Typed configuration for training. Only the CLI (and the app's launch form) turns text into these."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class SmartConfig:
    """SMART hyperparameters; defaults are the report's (section 4.2)."""

    lam: float = 5.0  # λ, weight of the adversarial regularizer
    eps: float = 1e-5  # ε, radius of the perturbation ball (∞-norm)
    sigma: float = 1e-5  # σ, std of the initial Gaussian noise
    eta: float = 1e-3  # η, ascent step size
    steps: int = 1  # K, ascent steps
    beta: float = 0.995  # β, momentum of the Bregman teacher
    mu: float = 1.0  # μ, weight of the Bregman term
    dropout_off: bool = True  # the report's change: no dropout while computing the adversarial loss
    same_masks: bool = False  # dropout on, but the perturbed forwards replay the main forward's masks

    @classmethod
    def fast(cls, **overrides: Any) -> SmartConfig:
        """The opt-in cheaper SMART (7 forward-pass units instead of 10, see core/smart.py): the perturbed
        forward replays the main forward's dropout masks instead of a dropout-free reference forward, and
        the perturbation is the clipped Gaussian noise without an ascent step (R3F-style)."""
        return cls(**{"steps": 0, "dropout_off": False, "same_masks": True, **overrides})


@dataclass
class TrainConfig:
    variant: str = "finetune"  # pretrain, finetune, rrobin, rrobin-pre, rrobin-full, with +smart/+rlayer
    task: str = "sst"  # for single-task variants
    encoder: str = "minilm-l6"  # a name or a Hugging Face BERT folder
    data_dir: str | None = None  # None: the demo data
    runs_dir: str = "runs"
    name: str | None = None
    epochs: int = 10
    batch_size: int = 64
    lr: float | None = None  # None: 1e-3 for pretrain, 1e-5 otherwise (the report's)
    seed: int = 0
    dropout: float = 0.3  # the task heads' dropout (the report's "hidden dropout 0.3" is its heads')
    encoder_dropout: float | None = None  # None: the checkpoint's own (hidden and attention dropout)
    pooling: str | None = None  # None: what the encoder folder declares (mean for sentence-transformers)
    max_length: int = 512
    weight_decay: float = 0.0
    clip_grad: float | None = None  # max grad norm; None: 1.0 under SMART (the report's code), else off; 0: off
    lr_schedule: str = "constant"  # "constant" (the report) or "linear" (decay to 0 at the last step)
    warmup: float = 0.0  # fraction of all steps with a linear warmup from 0
    ema: float = 0.0  # decay of an average of the weights (e.g. 0.999) that is evaluated and saved; 0 = off
    layer_decay: float = 1.0  # layer-wise lr decay: layer l of L gets lr * layer_decay ** (L + 1 - l); 1 = off
    rrobin_subset: str = "fixed"  # rrobin: "fixed" subset drawn once per run (the report's code) or "fresh" per epoch
    pair_input: str = "bi"  # "bi": [u, v, |u - v|] and cosine (the report); "cross": one sequence per pair
    eval_all: bool = False  # single-task variants: evaluate every multitask dev set (the report's Table 2)
    per_task_step: bool = True  # one optimizer step per task in turn (the report); False: one summed step
    temperature: float = 5.0  # annealed sampling: final T of p_t ∝ n_t^(1/T) (T goes 1 -> this; 5 = BERT-and-PALs)
    pre_epochs: int = 1  # Quora-only epochs before round-robin, for rrobin-pre
    eval_batch_size: int = 128
    log_every: int = 10
    checkpoint_every: int = 0  # steps; 0 = only at each epoch end
    keep_last: int = 2
    device: str = "auto"
    threads: int | None = None
    max_train: int | None = None  # cap on training examples per task (short runs)
    max_dev: int | None = None  # cap on dev examples per task
    max_steps: int | None = None  # cap on iterations per epoch (short runs)
    bucket: bool = True  # length-bucketed batches
    fused_adamw: bool = True
    autocast: str | None = None  # None, "bf16"
    compile: bool = False
    smart: SmartConfig = field(default_factory=SmartConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def validate(self) -> TrainConfig:
        """Raise a ``ValueError`` naming the first option out of range (before any run folder is made)."""
        checks = [("epochs", self.epochs >= 1, "at least 1"), ("batch_size", self.batch_size >= 1, "at least 1"),
                  ("lr", self.lr is None or self.lr > 0, "positive"),
                  ("dropout", 0 <= self.dropout < 1, "in [0, 1)"),
                  ("encoder_dropout", self.encoder_dropout is None or 0 <= self.encoder_dropout < 1, "in [0, 1)"),
                  ("warmup", 0 <= self.warmup < 1, "in [0, 1)"),
                  ("layer_decay", 0 < self.layer_decay <= 1, "in (0, 1]"),
                  ("ema", 0 <= self.ema < 1, "in [0, 1)"),
                  ("lr_schedule", self.lr_schedule in ("constant", "linear"), "constant or linear"),
                  ("rrobin_subset", self.rrobin_subset in ("fixed", "fresh"), "fixed or fresh"),
                  ("pair_input", self.pair_input in ("bi", "cross"), "bi or cross")]
        for name, ok, what in checks:
            if not ok:
                raise ValueError(f"--{name.replace('_', '-')} {getattr(self, name)}: must be {what}")
        return self

    def grad_clip_norm(self, smart: bool) -> float | None:
        """The max gradient norm to clip at, or None: ``clip_grad``, else 1.0 under SMART as the report's code."""
        if self.clip_grad is None:
            return 1.0 if smart else None
        return self.clip_grad if self.clip_grad > 0 else None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        if isinstance(d.get("smart"), dict):
            d["smart"] = SmartConfig(**d["smart"])
        return cls(**d)
