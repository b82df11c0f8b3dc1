"""``walkless``: the headless command line. The only place that parses arguments.

    walkless train --variant finetune --task sst --data-dir DIR --epochs 1
    walkless train --resume RUN_DIR [--epochs N]
    walkless eval --checkpoint RUN_DIR [--data-dir DIR]
    walkless predict --checkpoint RUN_DIR --task sst --input FILE --output FILE
    walkless compare RUN [RUN ...] [--json | --markdown]
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

from core.config import TrainConfig, default_of, flag, option_fields, parse_option, read_config_file

OPTION_NAMES = {name for name, *_ in option_fields()}

console = Console(stderr=True)


def add_train_args(p: argparse.ArgumentParser) -> None:
    """``walkless train``'s flags: one per training option (``core.config``), named after its field."""
    p.add_argument("--config", metavar="FILE", help="start from the options in this JSON file (a run's "
                   "config.json: a new run from that one, beside it); the flags given here override them")
    p.add_argument("--resume", metavar="RUN", help="continue a stopped or killed run from its last checkpoint, "
                   "with its own config.json (only --epochs and --threads apply)")
    p.add_argument("--smart-fast", action="store_true", help="cheaper SMART (about 2.3x a plain step instead of "
                   "3.3x): --smart-same-masks --smart-steps 0 (random perturbation, as R3F)")
    for name, f, kind, _ in option_fields():
        m, default = f.metadata, default_of(f)
        text = f"{'SMART ' + (m['label'] or name[6:]) + ': ' if name.startswith('smart_') else ''}{m['help']}"
        text += "" if default is None else f" (default: {'on' if default is True else 'off' if default is False else default})"
        if kind is bool:
            p.add_argument(flag(name), dest=name, action=argparse.BooleanOptionalAction, default=SUPPRESS, help=text)
            for alias in m["aliases"]:  # an old spelling of the negative flag
                p.add_argument(alias, dest=name, action="store_false", default=SUPPRESS, help=SUPPRESS)
        else:
            p.add_argument(flag(name), dest=name, default=SUPPRESS, type=partial(option_value, name), help=text,
                           metavar="{" + ",".join(m["choices"]) + "}" if m["choices"] else name.upper())


def option_value(name: str, text: str) -> object:
    try:
        return parse_option(name, text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def train_config(a: argparse.Namespace) -> TrainConfig:
    """The options of ``walkless train``: --config FILE's (else the defaults), then --smart-fast's, then the
    flags given."""
    given = {k: v for k, v in vars(a).items() if k in OPTION_NAMES}
    if getattr(a, "smart_fast", False):
        given = {"smart_steps": 0, "smart_dropout_off": False, "smart_same_masks": True, **given}
    if given.get("smart_same_masks") and "smart_dropout_off" not in given:
        given["smart_dropout_off"] = False  # replaying dropout masks needs dropout on
    base = read_config_file(a.config) if getattr(a, "config", None) else TrainConfig()
    return base.updated(given).validate()


def progress_bar() -> tuple[Progress, Callable[[int, int, int], None]]:
    """A rich progress bar (on stderr, drawn only on a terminal) and the callback that moves it."""
    bar = Progress(TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False)
    tasks: dict[int, TaskID] = {}

    def update(epoch: int, done: int, total: int) -> None:
        if epoch not in tasks:
            tasks[epoch] = bar.add_task("train", total=total, epoch=epoch)
        bar.update(tasks[epoch], completed=done, total=total)

    return bar, update


def cmd_train(a: argparse.Namespace) -> int:
    from core.train import resume, train

    other = sorted(OPTION_NAMES & {*vars(a)} - {"epochs", "threads"}) + (["config"] if a.config else [])
    if a.resume and other:
        raise ValueError(f"--resume takes the run's own config.json; only --epochs and --threads apply (not "
                         f"{', '.join(flag(o) for o in other)})")
    config = None if a.resume else train_config(a)
    bar, update = progress_bar()
    with bar:
        if a.resume:
            run_dir = resume(a.resume, epochs=getattr(a, "epochs", None), threads=getattr(a, "threads", None),
                             progress=update)
        else:
            run_dir = train(config, progress=update)
    console.print(f"[green]run finished:[/] {run_dir}")
    print(run_dir)
    return 0


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
    r.add_argument("--task", choices=["sst", "cfimdb", "para", "sts"])
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
    d = sub.add_parser("demo-data", help="write the synthetic demo dataset into a folder")
    d.add_argument("out")
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(func=cmd_demo_data)
    add_bench_parser(sub)
    add_table2_parser(sub)
    return p


def add_table2_parser(sub) -> None:
    from core.table2 import ROWS, Table2Config

    d = Table2Config()
    t = sub.add_parser("table2", help="the report's Table 2: its rows one after another in one runs folder, "
                                      "resumable; writes table2.json and table2.md")
    t.add_argument("--runs-dir", default=d.runs_dir, help="where the row runs and the table go (keep it outside "
                                                          "a work tree)")
    t.add_argument("--rows", default=",".join(ROWS), help="comma-separated subset of the rows, in any order")
    t.add_argument("--epochs", type=int, default=d.epochs, help="epochs per row (the report: 10)")
    t.add_argument("--encoder", default=d.encoder)
    t.add_argument("--data-dir", default=None, help="the CS224N folder (default: the demo data)")
    t.add_argument("--max-train", type=int, default=None, help="cap on training examples per task")
    t.add_argument("--max-dev", type=int, default=None, help="cap on dev examples per task")
    t.add_argument("--max-steps", type=int, default=None, help="cap on iterations per epoch (smoke runs)")
    t.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every,
                   help="steps between checkpoints inside a row (what a kill can lose)")
    t.add_argument("--threads", type=int, default=None)
    t.add_argument("--seed", type=int, default=d.seed)
    t.set_defaults(func=cmd_table2)


def cmd_table2(a: argparse.Namespace) -> int:
    from core.table2 import Table2Config, check_rows, run_table2, table2_markdown

    rows = check_rows(tuple(r.strip() for r in a.rows.split(",") if r.strip()))
    cfg = Table2Config(runs_dir=a.runs_dir, rows=rows, epochs=a.epochs, encoder=a.encoder, data_dir=a.data_dir,
                       max_train=a.max_train, max_dev=a.max_dev, max_steps=a.max_steps, threads=a.threads,
                       seed=a.seed, checkpoint_every=a.checkpoint_every,
                       command=shlex.join(["walkless", *a.argv]))
    table = run_table2(cfg, on_row=lambda row, what: console.print(f"table2: {row} {what}"))
    print(table2_markdown(table))
    console.print(f"wrote {Path(a.runs_dir) / 'table2.json'} and table2.md")
    return 0


def add_bench_parser(sub) -> None:
    from core.bench import BenchConfig

    d = BenchConfig()
    b = sub.add_parser("bench", help="training throughput vs an expert and a naive transformers loop, SMART cost, scoring "
                                     "latency and MFU, in one run (writes JSON)")
    b.add_argument("--encoder", default=d.encoder)
    b.add_argument("--data-dir", default=None, help="the CS224N folder (e.g. ../shared/data); default: demo data")
    b.add_argument("--task", default=d.task, choices=["sst", "cfimdb"])
    b.add_argument("--batch-size", type=int, default=d.batch_size)
    b.add_argument("--batches", type=int, default=d.batches, help="timed training batches per side per round")
    b.add_argument("--rounds", type=int, default=d.rounds, help="passes over the examples per side (steps alternate)")
    b.add_argument("--warmup", type=int, default=d.warmup)
    b.add_argument("--smart-batches", type=int, default=d.smart_batches)
    b.add_argument("--no-smart", action="store_true", help="skip the SMART step measurement")
    b.add_argument("--latency-samples", type=int, default=d.latency_samples)
    b.add_argument("--no-eval", action="store_true", help="skip timing the evaluation of the three dev sets")
    b.add_argument("--max-dev", type=int, default=None, help="cap per dev set for the evaluation timing")
    b.add_argument("--threads", type=int, default=None)
    b.add_argument("--autocast", choices=["bf16"], default=None, help="our trainer's bf16 autocast")
    b.add_argument("--compile", action="store_true", help="our trainer's torch.compile option")
    b.add_argument("--out", default=d.out, help="JSON output file")
    b.set_defaults(func=cmd_bench)


def cmd_bench(a: argparse.Namespace) -> int:
    from core.bench import BenchConfig, print_bench, run_bench

    cfg = BenchConfig(encoder=a.encoder, data_dir=a.data_dir, task=a.task, batch_size=a.batch_size,
                      batches=a.batches, rounds=a.rounds, warmup=a.warmup, smart=not a.no_smart,
                      smart_batches=a.smart_batches, latency_samples=a.latency_samples, eval_dev=not a.no_eval,
                      max_dev=a.max_dev, threads=a.threads, autocast=a.autocast, compile=a.compile, out=a.out)
    res = run_bench(cfg, command="walkless " + " ".join(sys.argv[1:]))
    print_bench(res)
    if a.out:
        console.print(f"wrote {a.out}")
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
