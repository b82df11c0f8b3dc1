"""SMART (Jiang et al., 2020) as the report uses it (section 3.1, appendix A).

The regularized loss of one task batch is

    task loss + λ · l_s(f(x̃; θ), f(x; θ))  +  μ · l_s(f(x; θ), f(x; θ̃))
                └ smoothness-inducing adversarial ┘   └ Bregman proximal point ┘

- ``x`` is the embedding-layer output (N, T, C) of the main forward (``model.embed``); ``x̃ = x + δ``.
  δ starts as Gaussian noise (σ) and takes K ascent steps ``δ ← Π_ε(δ + η g / ||g||∞)`` on
  ``l_s(f(x + δ), f(x))``, with ``g`` its gradient w.r.t. δ only (``torch.autograd.grad``: no weight
  gradients), the ∞-norm taken per sentence, and Π_ε the projection onto the ∞-norm ball of radius ε.
- ``l_s``: symmetric KL for classification; for paraphrase the two-class distribution ``(1 - σ(z), σ(z))``
  of the single logit (a softmax over one logit is identically 1, so its KL is 0: a bug in a published
  implementation); squared error for STS.
- Dropout (the report's change, ``dropout_off=True``): the adversarial term is computed with every module
  in eval mode, **both** f(x̃) and the reference f(x), which therefore needs its own forward: the main
  forward's ``out`` carries dropout masks, so comparing against it leaves a dropout-sized term that does not
  vanish as ε → 0. ``dropout_off=False`` is the published behaviour: the reference is ``out`` itself and
  f(x̃) draws fresh masks. Every module's own train/eval flag is restored afterwards.
- The reference f(x) is a constant (computed under ``no_grad``), in the ascent and in the final term, as in
  virtual adversarial training: gradients reach θ through f(x̃), including through x into the embeddings.
  This saves a backward pass; the full SMART gradient would also move f(x) towards f(x̃).
- Bregman teacher: θ̃ ← β θ̃ + (1 − β) θ after every optimizer step (``update_teacher``). Its forward
  (``no_grad``) replays the dropout masks of the main forward (``capture_rng()`` right before it), so the
  term is exactly 0 while θ̃ = θ and measures how far the weights moved, not dropout noise. The student
  side is the main forward's ``out``, so the term costs no extra backward.

Cost of a SMART step in forward-pass units F (a backward ≈ 2F, an ascent backward without weight
gradients ≈ 1F): main 3F + reference 1F (dropout off only) + ascent 2F per step + adversarial 3F +
teacher 1F ≈ 10F against a plain step's 3F, so about 3.3x whatever the implementation (9F with dropout on;
measured figures in benchmarks/README.md). ``mu=0`` skips the teacher forward.

The fast mode (``SmartConfig.fast()``, CLI ``--smart-fast``): 7F, about 2.3x. Two changes, both opt-in:

- ``same_masks``: dropout stays on in the adversarial forwards, and they **replay the main forward's dropout
  masks** (its random state, captured where the encoder starts: ``capture_rng("encoder")``); the reference
  is then the main forward's own ``out``. Same masks make f(x + δ) and f(x) the same sub-network, so the
  term vanishes as ε → 0, the property the report switched dropout off for, without the reference forward.
- ``steps=0``: no ascent, δ is the clipped Gaussian noise, i.e. the random-perturbation smoothness term of
  R3F (Aghajanyan et al., 2021, "Better Fine-Tuning by Reducing Representational Collapse"), which matched
  SMART on GLUE at a fraction of the cost. This drops the adversarial search; the default keeps it.

The report's code (``--profile report-code``; each also its own option, docs/report-code.md) differs in four ways,
kept here as quirks off by default: ``para_kl="one-logit"`` (its KL over a softmax of the single paraphrase logit:
both terms exactly 0 for paraphrase, so they are not computed); ``sts_bregman="batch-softmax"`` (its STS Bregman
term: squared error of softmaxes taken across the batch of the 0..1 outputs, output / 5 here; with the relational
student of ``rlayer_terms="plain"`` a softmax over one element, a constant); ``teacher_masks="fresh"`` (the teacher
forward draws new dropout masks); ``rlayer_terms="plain"`` (with +rlayer, the adversarial forwards and the teacher
run the pair tasks through the non-relational heads, as its ``model_prediction`` does, while the student is the
main, relational output). Its λ default is 10 (``lam``), the report's text's 5.

With ``--autocast bf16`` note that ε = 1e-5 is below bf16 resolution once x̃ enters the first matmul.

Sizes measured on all-MiniLM-L6-v2 (``scripts/smart_terms.py``; experiments/smart-terms/): at ε = 1e-5 the
smoothness term R_s is about 1e-11 with random noise and 2e-7 after one ascent step (times λ = 5, under 1e-5 of a
task loss), while the Bregman term is 1 to 6 % of the task loss. So at the default ε the Bregman term (and the clipping SMART turns on) does the
work, and ``lam=0`` (no perturbed forward) trains models as good on average (three GPU seeds) for less time. They
are not the same models: ``lam=0`` skips the noise draw, so the random stream (and every dropout mask after it)
differs. With fresh masks (``dropout_off``
and ``same_masks`` both off, the published setting) R_s is the disagreement of two dropout sub-networks, R-Drop's
consistency term: 0.03 to 0.1, 5 to 35 % of the task loss (``smart_terms.py --fresh-masks``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import torch
from torch.func import functional_call

from core.config import SmartConfig
from core.data import TASKS, Batch
from core.multitask import MultitaskBert

log = logging.getLogger(__name__)


def smoothness_loss(task: str, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """l_s of two task outputs, batch mean (a scalar).

    classify: logits (B, C) -> symmetric KL of the softmaxes; binary: one logit (B,) -> symmetric KL of the
    two-class sigmoid distributions; regress: scores (B,) -> squared error. For distributions p, q with
    logits a, b: KL(p||q) + KL(q||p) = Σ_c (p_c - q_c)(log p_c - log q_c) = Σ_c (p_c - q_c)(a_c - b_c),
    because the log-normalizers cancel (Σ_c (p_c - q_c) = 0); the same identity with logits (0, z) gives
    (σ(a) - σ(b))(a - b) for paraphrase. No logarithms, so no overflow for confident outputs.
    """
    a, b = a.float(), b.float()
    kind = TASKS[task].kind
    if kind == "classify":
        return ((a.softmax(-1) - b.softmax(-1)) * (a - b)).sum(-1).mean()
    if kind == "binary":
        return ((torch.sigmoid(a) - torch.sigmoid(b)) * (a - b)).mean()
    return (a - b).pow(2).mean()


def batch_softmax_bregman(out: torch.Tensor, teacher: torch.Tensor, single: bool = False) -> torch.Tensor:
    """The report's code's STS Bregman term: scores (B,) of student and teacher on its 0..1 scale (output / 5) ->
    the mean squared difference of their softmaxes across the batch. ``single``: its student is a (B, 1) relational
    output, whose softmax over one element is 1: the difference broadcasts to (B, B) and carries no gradient."""
    q = (teacher.float() / 5.0).softmax(0)  # (B,)
    p = torch.ones_like(out.float())[:, None] if single else (out.float() / 5.0).softmax(0)  # (B, 1) or (B,)
    return (p - q).pow(2).mean()


@torch.no_grad()
def ema_update(average: list[torch.Tensor], params: list[torch.Tensor], decay: float) -> None:
    """average ← decay · average + (1 − decay) · params, in two fused foreach kernels (the Bregman teacher, and
    the trainer's ``--ema``)."""
    torch._foreach_mul_(average, decay)
    torch._foreach_add_(average, [p.detach() for p in params], alpha=1.0 - decay)


class Smart:
    """SMART terms for one model; ``Trainer`` calls ``capture_rng``, ``regularizer`` and ``update_teacher``."""

    def __init__(self, model: MultitaskBert, config: SmartConfig):
        config = config.resolved()  # options left unset: ours (a run's config comes resolved by its profile)
        self.model, self.config = model, config
        self.plain = model.heads.rlayer and config.rlayer_terms == "plain"  # pair terms through the plain heads
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self.names = [n for n, _ in named]
        self.params: list[torch.Tensor] = [p for _, p in named]
        self.teacher = [p.detach().clone() for p in self.params]  # θ̃, starts at θ
        self._modules = list(model.modules())
        self._rng: dict[str, torch.Tensor] = {}  # random state where the main forward / its encoder started
        self._warned = False
        self.terms: list[tuple[torch.Tensor, torch.Tensor]] = []  # (R_s, Bregman) per batch, unweighted, detached
        if config.same_masks and config.dropout_off:
            raise ValueError("SMART: same_masks replays dropout masks, so it needs dropout on (dropout_off=False)")

    # --- the loss term ----------------------------------------------------------------------------
    def regularizer(self, task: str, batch: Batch, emb: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """λ·R_s + μ·Bregman for one batch. emb: the main forward's embedding output (N, T, C) (with its
        graph); out: the main forward's task output. Returns a scalar to add to the task loss."""
        zero = out.new_zeros((), dtype=torch.float32)  # the sum stays float32 under bf16 autocast
        lam = self.config.lam
        assert lam is not None, "SmartConfig.resolved() sets λ from the profile"
        vanishes = TASKS[task].kind == "binary" and self.config.para_kl == "one-logit"  # the code's KL: always 0
        r_s = self.adversarial(task, batch, emb, out) if lam > 0 and not vanishes else zero
        breg = self.bregman(task, batch, out) if self.config.mu > 0 and not vanishes else zero
        self._rng = {}
        self.terms.append((r_s.detach().float(), breg.detach().float()))  # read by the trainer's step log
        return zero + lam * r_s + self.config.mu * breg

    def drain_terms(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The (R_s, Bregman) pairs of the batches since the last call, in order (device tensors, no sync)."""
        terms, self.terms = self.terms, []
        return terms

    def adversarial(self, task: str, batch: Batch, emb: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """R_s = l_s(f(x + δ), f(x)) with δ from ``ascend`` (see the module docstring for dropout)."""
        mask = batch.attention_mask
        with self.dropout_off() if self.config.dropout_off else contextlib.nullcontext():
            if self.config.dropout_off:
                with torch.no_grad():
                    ref = self.model.head(task, emb.detach(), mask, self.plain)
            else:  # the main forward's output: with same_masks the perturbed forwards reuse its masks
                ref = out.detach()
            delta = self.ascend(task, emb.detach(), mask, ref)
            adv = self._perturbed(task, emb + delta, mask)
        return smoothness_loss(task, adv, ref)

    def _perturbed(self, task: str, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """f(x̃) from the embedding-layer output; with ``same_masks``, under the main forward's dropout masks."""
        with self._replay_rng("encoder") if self.config.same_masks else contextlib.nullcontext():
            return self.model.head(task, x, mask, self.plain)

    def ascend(self, task: str, x: torch.Tensor, mask: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        """x (N, T, C) detached, ref the constant f(x) -> δ (N, T, C), ``|δ|∞ <= ε``, found by K steps of
        projected ascent from N(0, σ²) noise (K = 0: the clipped noise itself)."""
        eps = self.config.eps
        delta = torch.randn_like(x) * self.config.sigma
        for _ in range(self.config.steps):
            delta.requires_grad_()
            loss = smoothness_loss(task, self._perturbed(task, x + delta, mask), ref)
            (g,) = torch.autograd.grad(loss, delta)
            g_inf = g.abs().amax(dim=(1, 2), keepdim=True)  # (N, 1, 1): per-sentence ∞-norm
            delta = delta.detach() + self.config.eta * g / (g_inf + 1e-20)
            delta = delta.clamp(-eps, eps)  # projection onto the ∞-norm ball
        return delta.clamp(-eps, eps).detach()

    def bregman(self, task: str, batch: Batch, out: torch.Tensor) -> torch.Tensor:
        """l_s(f(x; θ), f(x; θ̃)): the student is the main forward's ``out``, the teacher a no-grad forward
        with the teacher weights and the same dropout masks (``teacher_masks="fresh"``: new ones)."""
        same = self.config.teacher_masks != "fresh"
        with torch.no_grad(), self._replay_rng("forward") if same else contextlib.nullcontext():
            t = functional_call(self.model, dict(zip(self.names, self.teacher, strict=True)), (batch, self.plain))
        if TASKS[task].kind == "regress" and self.config.sts_bregman == "batch-softmax":
            return batch_softmax_bregman(out, t, single=self.plain)
        return smoothness_loss(task, out, t)

    # --- teacher ----------------------------------------------------------------------------------
    def update_teacher(self) -> None:
        """θ̃ ← β θ̃ + (1 − β) θ, after each optimizer step."""
        ema_update(self.teacher, self.params, self.config.beta)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The teacher tensors by parameter name (flat, for safetensors; prefix them when mixing)."""
        return dict(zip(self.names, self.teacher, strict=True))

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Copy saved teacher tensors in; a clear error when a name is missing or has another shape."""
        missing = [n for n in self.names if n not in state]
        if missing:
            raise ValueError(f"SMART teacher state lacks {len(missing)} tensors (e.g. {missing[0]!r}); "
                             f"was it saved with another model or variant?")
        for n, t in zip(self.names, self.teacher, strict=True):
            if state[n].shape != t.shape:
                raise ValueError(f"SMART teacher tensor {n!r}: shape {tuple(state[n].shape)}, "
                                 f"expected {tuple(t.shape)}")
            t.copy_(state[n])

    # --- modes and random state -------------------------------------------------------------------
    @contextlib.contextmanager
    def dropout_off(self) -> Iterator[None]:
        """Every module in eval mode (BERT has no batch norm: eval only switches dropout off); each
        module's own flag is restored after, so e.g. a frozen part kept in eval stays in eval."""
        modes = [m.training for m in self._modules]
        self.model.eval()
        try:
            yield
        finally:
            for m, mode in zip(self._modules, modes, strict=True):
                m.training = mode

    def _device(self) -> torch.device:
        return self.params[0].device if self.params else torch.device("cpu")

    def _get_rng(self) -> torch.Tensor:
        d = self._device()
        return torch.cuda.get_rng_state(d) if d.type == "cuda" else torch.get_rng_state()

    def _set_rng(self, state: torch.Tensor) -> None:
        d = self._device()
        if d.type == "cuda":
            torch.cuda.set_rng_state(state, d)
        else:
            torch.set_rng_state(state)

    def capture_rng(self, at: str = "forward") -> None:
        """Call right before the main forward of a batch (``"forward"``: the teacher replays its dropout
        masks) and between its embedding layer and encoder (``"encoder"``: the perturbed forwards of
        ``same_masks`` replay the encoder's masks)."""
        self._rng[at] = self._get_rng()

    @contextlib.contextmanager
    def _replay_rng(self, at: str) -> Iterator[None]:
        """Run the block from the random state captured at ``at`` in the main forward, then continue from
        the current one (so later draws are not repeats)."""
        if at not in self._rng:
            if self.model.training and not self._warned:
                log.warning("SMART: capture_rng(%r) was not called in the main forward; the %s uses fresh "
                            "dropout masks, so its term carries dropout noise", at,
                            "Bregman teacher" if at == "forward" else "perturbed forward")
                self._warned = True
            yield
            return
        now = self._get_rng()
        self._set_rng(self._rng[at])
        try:
            yield
        finally:
            self._set_rng(now)
