"""``walkless``: the headless command line. The only place that parses arguments.

    walkless train --variant finetune --task sst --data-dir DIR --epochs 1
    walkless train --resume RUN_DIR [--epochs N]
    walkless eval --checkpoint RUN_DIR [--data-dir DIR]
    walkless predict --checkpoint RUN_DIR --task sst --input FILE --output FILE
    walkless compare RUN [RUN ...] [--json | --markdown]
    walkless ensemble RUN [RUN ...] --out DIR [--data-dir DIR]
    walkless demo-data OUT
    walkless bench [--data-dir DIR] [--batches N] [--rounds R] [--out bench.json]
    walkless table2 --runs-dir DIR --data-dir DIR [--rows ROW,...] [--epochs N] [--max-train N]
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import shlex
import sys
from argparse import SUPPRESS
from collections.abc import Callable
from functools import partial
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from core.config import (
    FAST_SMART,
    TrainConfig,
    as_text,
    default_of,
    flag,
    option_fields,
    parse_option,
    read_config_file,
)
from core.tasks import TASK_NAMES

console = Console(stderr=True)


def add_options(p: argparse.ArgumentParser, cls: type) -> None:
    """One flag per option of the dataclass ``cls`` (``core.config.opt`` fields), named after its field."""
    for name, f, kind, _ in option_fields(cls):
        m, default = f.metadata, default_of(f)
        if not m.get("cli", True):
            continue
        text = f"{'SMART ' + (m['label'] or name[6:]) + ': ' if m['form'] == 'smart' else ''}{m['help']}"
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else as_text(default)
        text += "" if default is None or "default" in m["help"] else f" (default: {shown})"
        if kind is bool:
            p.add_argument(flag(name), dest=name, action=argparse.BooleanOptionalAction, default=SUPPRESS, help=text)
            for alias in m["aliases"]:  # an old spelling of the negative flag
                p.add_argument(alias, dest=name, action="store_false", default=SUPPRESS, help=SUPPRESS)
        else:
            p.add_argument(flag(name), dest=name, default=SUPPRESS, type=partial(option_value, name, cls), help=text,
                           metavar="{" + ",".join(m["choices"]) + "}" if m["choices"] else name.upper())


def add_train_args(p: argparse.ArgumentParser) -> None:
    """``walkless train``'s flags: one per training option (``core.config``)."""
    p.add_argument("--config", metavar="FILE", help="start from the options in this JSON file (a run's "
                   "config.json: a new run from that one, beside it); the flags given here override them")
    p.add_argument("--resume", metavar="RUN", help="continue a stopped or killed run from its last checkpoint, "
                   "with its own config.json (only --epochs and --threads apply)")
    p.add_argument("--smart-fast", action="store_true", help="cheaper SMART (about 2.3x a plain step instead of "
                   "3.3x): --smart-same-masks --smart-steps 0 (random perturbation, as R3F)")
    add_options(p, TrainConfig)


def option_value(name: str, cls: type, text: str) -> object:
    try:
        return parse_option(name, text, cls)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def given(a: argparse.Namespace, cls: type) -> dict:
    """The options of ``cls`` given on the command line (flags default to absent)."""
    names = {name for name, f, *_ in option_fields(cls) if f.metadata.get("cli", True)}
    return {k: v for k, v in vars(a).items() if k in names}


def train_config(a: argparse.Namespace) -> TrainConfig:
    """The options of ``walkless train``: --config FILE's (else the defaults), then --smart-fast's, then the
    flags given, checked (the one check of a run's options read from the command line)."""
    options = given(a, TrainConfig)
    if getattr(a, "smart_fast", False):
        options = {**{f"smart_{k}": v for k, v in FAST_SMART.items()}, **options}
    if options.get("smart_same_masks") and "smart_dropout_off" not in options:
        options["smart_dropout_off"] = False  # replaying dropout masks needs dropout on
    base = read_config_file(a.config) if getattr(a, "config", None) else TrainConfig()
    return base.updated(options).validate()


def progress_bar() -> tuple[Progress, Callable[[int, int, int], None]]:
    """A rich progress bar (on stderr, drawn only on a terminal) and the callback that moves it. The bar starts
    at the first step: a run that fails before one leaves no empty bar line above its error."""
    bar = Progress(TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False,
                   auto_refresh=console.is_terminal)
    tasks: dict[int, TaskID] = {}

    def update(epoch: int, done: int, total: int) -> None:
        if not bar.live.is_started and console.is_terminal:
            bar.start()
        if epoch not in tasks:
            tasks[epoch] = bar.add_task("train", total=total, epoch=epoch)
        bar.update(tasks[epoch], completed=done, total=total)

    return bar, update


def cmd_train(a: argparse.Namespace) -> int:
    from core.train import resume, train

    other = sorted({*given(a, TrainConfig)} - {"epochs", "threads"}) + (["config"] if a.config else [])
    if a.resume and other:
        raise ValueError(f"--resume takes the run's own config.json; only --epochs and --threads apply (not "
                         f"{', '.join(flag(o) for o in other)})")
    config = None if a.resume else train_config(a)
    bar, update = progress_bar()
    try:
        if config is None:
            run_dir = resume(a.resume, epochs=getattr(a, "epochs", None), threads=getattr(a, "threads", None),
                             progress=update)
        else:
            run_dir = train(config, progress=update)
    finally:
        if bar.live.is_started:
            bar.stop()
    console.print(run_outcome(run_dir), soft_wrap=True)
    print(run_dir)
    return 0


def run_outcome(run_dir: Path) -> str:
    """The line that ends ``walkless train``: finished, or stopped with its checkpoint step and the resume command
    (rich markup)."""
    from core.runs import read_json

    status = read_json(run_dir / "status.json", {}) or {}
    if status.get("state") == "stopped":
        return (f"[yellow]run stopped at step {status.get('step', '?')}:[/] {escape(str(run_dir))} (its checkpoint "
                f"is kept; continue with `walkless train --resume {escape(str(run_dir))}`)")
    return f"[green]run finished:[/] {escape(str(run_dir))}"


def _dev_sets(model, tok, data_dir: Path) -> dict:
    from core.data import load_task

    return {t: load_task(data_dir, t, "dev", tok) for t in model.heads.tasks}


def say_checkpoint(path: str, meta: dict) -> None:
    """Which checkpoint a command scores: its folder, step and epoch (on stderr)."""
    from core.runs import checkpoint_path

    console.print(f"checkpoint {escape(str(checkpoint_path(path)))}: step {meta.get('step', '?')}, "
                  f"epoch {meta.get('epoch', '?')}", soft_wrap=True)


def cmd_eval(a: argparse.Namespace) -> int:
    from core.checkpoint import load_checkpoint
    from core.data import demo_data_dir
    from core.evaluate import evaluate

    model, meta, tok = load_checkpoint(a.checkpoint)
    say_checkpoint(a.checkpoint, meta)
    data_dir = Path(a.data_dir) if a.data_dir else demo_data_dir()
    metrics, reports = evaluate(model, _dev_sets(model, tok, data_dir), a.batch_size)
    from core.report import print_metrics

    print_metrics(metrics, reports, meta)
    if a.json:
        Path(a.json).write_text(json.dumps({"metrics": metrics, "reports": reports}, indent=2))
    return 0


def cmd_predict(a: argparse.Namespace) -> int:
    # either --all --out DIR [--data-dir DIR] or --task --input --output; anything else is an argparse error
    single = {"--task": a.task, "--input": a.input, "--output": a.output}
    given, missing = [k for k, v in single.items() if v is not None], [k for k, v in single.items() if v is None]
    if a.all and given:
        a.predict_parser.error(f"--all cannot be combined with {', '.join(given)}")
    if a.all and a.out is None:
        a.predict_parser.error("--all requires --out DIR")
    if not a.all and (a.out is not None or a.data_dir is not None):
        a.predict_parser.error("--out and --data-dir only go with --all")
    if not a.all and missing:
        a.predict_parser.error(f"give --task, --input and --output (missing {', '.join(missing)}), or --all --out DIR")
    if not a.all and not Path(a.output).absolute().parent.is_dir():
        raise ValueError(f"--output {a.output}: its folder {Path(a.output).absolute().parent} does not exist "
                         f"(create it first)")
    from core.checkpoint import load_checkpoint
    from core.data import demo_data_dir, read_examples, tokenize
    from core.evaluate import predict

    model, meta, tok = load_checkpoint(a.checkpoint)
    say_checkpoint(a.checkpoint, meta)
    if a.all:
        from core.export import export_submission

        written = export_submission(model, tok, Path(a.data_dir) if a.data_dir else demo_data_dir(), Path(a.out),
                                    a.batch_size, warn=lambda m: console.print(f"[yellow]warning:[/] {escape(m)}",
                                                                               soft_wrap=True))
        for path, n in written:
            console.print(f"wrote {n} predictions to {escape(str(path))}", soft_wrap=True)
        return 0
    if a.task not in model.heads.tasks:
        raise ValueError(f"checkpoint {a.checkpoint} has no {a.task} head (it has {', '.join(model.heads.tasks)})")
    examples = read_examples(a.input, a.task)
    preds = predict(model, tokenize(examples, a.task, tok, source=a.input), a.batch_size)
    out = Path(a.output)
    tmp = out.with_name(f".{out.name}.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(["id", "prediction"])
        for e, p in zip(examples, preds.tolist(), strict=True):
            w.writerow([e.id, f"{p:.4f}" if a.task == "sts" else int(p)])
    tmp.replace(out)
    console.print(f"wrote {len(examples)} predictions to {out}")
    return 0


def cmd_compare(a: argparse.Namespace) -> int:
    from core.report import print_compare

    print_compare([Path(r) for r in a.runs], fmt="json" if a.json else "markdown" if a.markdown else "table",
                  at="checkpoint" if a.best_checkpoint else "column")
    return 0


def cmd_average(a: argparse.Namespace) -> int:
    from core.checkpoint import average_checkpoints

    out = average_checkpoints(a.checkpoints, a.out)
    console.print(f"wrote the average of {len(a.checkpoints)} checkpoints to {escape(str(out))}", soft_wrap=True)
    return 0


def cmd_ensemble(a: argparse.Namespace) -> int:
    from core.ensemble import build_ensemble
    from core.report import ensemble_table

    result = build_ensemble(a.runs, a.out, a.data_dir, a.batch_size)
    if result.dev:
        Console().print(ensemble_table(result))
    console.print(f"wrote the ensemble of {len(a.runs)} runs to {escape(str(result.out))}"
                  + ("" if result.dev else " (give --data-dir to measure it and what each member adds)"),
                  soft_wrap=True)
    return 0


def cmd_calibrate(a: argparse.Namespace) -> int:
    from core.calibrate import calibrate_checkpoint
    from core.data import demo_data_dir

    out, c = calibrate_checkpoint(a.checkpoint, a.data_dir or demo_data_dir(), a.out, a.pairs, a.seed, a.batch_size)
    console.print(f"paraphrase offset {c.para_offset:+.4f} on {c.pairs} training pairs: called duplicates "
                  f"{c.duplicates_before:.3f} -> {c.duplicates_after:.3f} (labels {c.labels:.3f}); wrote "
                  f"{escape(str(out))}", soft_wrap=True)
    return 0


def cmd_demo_data(a: argparse.Namespace) -> int:
    from core.demo import write_demo_data

    print(write_demo_data(a.out, seed=a.seed))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="walkless", description="Multitask BERT fine-tuning (headless).")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a variant; the run lands in RUNS_DIR/NAME")
    add_train_args(t)
    t.set_defaults(func=cmd_train)
    e = sub.add_parser("eval", help="dev metrics, confusion matrices and per-class F1 of a checkpoint")
    e.add_argument("--checkpoint", required=True, help="a run folder (its best checkpoint) or a checkpoint folder")
    e.add_argument("--data-dir", default=None)
    e.add_argument("--batch-size", type=int, default=128)
    e.add_argument("--json", default=None, help="also write metrics and reports to this JSON file")
    e.set_defaults(func=cmd_eval)
    r = sub.add_parser("predict", help="predictions for a CS224N-format file, as id<TAB>prediction; or with --all "
                                       "the six CS224N submission files")
    r.add_argument("--checkpoint", required=True)
    r.add_argument("--task", choices=TASK_NAMES)
    r.add_argument("--input")
    r.add_argument("--output")
    r.add_argument("--all", action="store_true",
                   help="write {sst,para,sts}-{dev,test}-output.csv (the CS224N starter's format) into --out from "
                        "the dev and test-student files of --data-dir; not with --task/--input/--output")
    r.add_argument("--data-dir", default=None, help="with --all: the CS224N folder (default: the demo data)")
    r.add_argument("--out", default=None, help="with --all: the output folder (created)")
    r.add_argument("--batch-size", type=int, default=128)
    r.set_defaults(func=cmd_predict, predict_parser=r)
    c = sub.add_parser("compare", help="the report's Table 2 for some runs")
    c.add_argument("runs", nargs="+")
    c.add_argument("--best-checkpoint", action="store_true",
                   help="each run's best checkpoint's dev values (one model) instead of each column's best epoch")
    fmt = c.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="rows as JSON on stdout (metrics, s/epoch, settings)")
    fmt.add_argument("--markdown", action="store_true", help="the table as GitHub markdown on stdout")
    c.set_defaults(func=cmd_compare)
    v = sub.add_parser("average", help="checkpoint averaging: the mean of some checkpoints' weights (e.g. a run's "
                                       "last epochs) as a new checkpoint folder, for eval, predict and the app")
    v.add_argument("checkpoints", nargs="+", help="run folders (their best checkpoint) or checkpoint folders")
    v.add_argument("--out", required=True, help="the new checkpoint folder (must not exist)")
    v.set_defaults(func=cmd_average)
    n = sub.add_parser("ensemble", help="several runs' best checkpoints as one model averaging their probabilities "
                                        "(SST, Quora) and similarities (STS), a folder for eval, predict and the app")
    n.add_argument("runs", nargs="+", help="run folders (their best checkpoint) or checkpoint folders; they must "
                                           "share one tokenizer")
    n.add_argument("--out", required=True, help="the new ensemble folder (must not exist; the members are copied in)")
    n.add_argument("--data-dir", default=None, help="evaluate every member, the ensemble and the ensemble without "
                                                    "each member on this folder's dev files (printed and saved)")
    n.add_argument("--batch-size", type=int, default=128)
    n.set_defaults(func=cmd_ensemble)
    k = sub.add_parser("calibrate", help="fit a checkpoint's paraphrase offset on training pairs in eval mode (what "
                                         "train --calibrate-para does at each epoch) into a new checkpoint folder")
    k.add_argument("checkpoint", help="a run folder (its best checkpoint) or a checkpoint folder")
    k.add_argument("--data-dir", default=None, help="the folder with quora-train.csv (default: the demo data)")
    k.add_argument("--pairs", type=int, default=4000, help="training pairs to fit on (a fixed sample; default 4000)")
    k.add_argument("--seed", type=int, default=0, help="which sample of --pairs pairs")
    k.add_argument("--out", required=True, help="the new checkpoint folder (must not exist)")
    k.add_argument("--batch-size", type=int, default=128)
    k.set_defaults(func=cmd_calibrate)
    d = sub.add_parser("demo-data", help="write the synthetic demo dataset into a folder")
    d.add_argument("out")
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(func=cmd_demo_data)
    add_bench_parser(sub)
    add_table2_parser(sub)
    return p


def add_table2_parser(sub) -> None:
    from core.table2 import Table2Config

    t = sub.add_parser("table2", help="the report's Table 2: its rows one after another in one runs folder, "
                                      "resumable; writes table2.json and table2.md")
    add_options(t, Table2Config)
    t.set_defaults(func=cmd_table2)


def cmd_table2(a: argparse.Namespace) -> int:
    from core.table2 import TABLE2_FILE, Table2Config, run_table2, table2_markdown

    cfg = Table2Config(**given(a, Table2Config), command=shlex.join(["walkless", *a.argv]))
    table = run_table2(cfg, on_row=lambda row, what: console.print(f"table2: {row} {what}"))
    print(table2_markdown(table))
    console.print(f"wrote {Path(cfg.runs_dir) / TABLE2_FILE} and table2.md")
    return 0


def add_bench_parser(sub) -> None:
    from core.bench import BenchConfig

    b = sub.add_parser("bench", help="training throughput vs an expert and a naive transformers loop, SMART cost, "
                                     "scoring latency and MFU, in one run (writes JSON)")
    add_options(b, BenchConfig)
    b.set_defaults(func=cmd_bench)


def cmd_bench(a: argparse.Namespace) -> int:
    from core.bench import BenchConfig, print_bench, run_bench

    cfg = BenchConfig(**given(a, BenchConfig))
    res = run_bench(cfg, command="walkless " + " ".join(sys.argv[1:]))
    print_bench(res)
    if cfg.out:
        console.print(f"wrote {cfg.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    a = build_parser().parse_args(argv)
    a.argv = list(argv)  # the command as typed, for the files that record it
    logging.basicConfig(level=logging.INFO if a.verbose or a.command in ("train", "bench", "table2") else logging.WARNING,
                        format="%(levelname)s %(message)s")
    for noisy in ("httpx", "transformers", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    try:
        return a.func(a)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        return 130
    except (ValueError, OSError, RuntimeError) as e:
        # one line, never wrapped or read as markup: messages name files and hold [brackets]
        console.print(f"[red]error:[/] {escape(str(e))}", soft_wrap=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
