"""The help screen: what each screen shows and its keys."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# walkless-tui

Watch, launch, compare and probe multitask BERT runs. Every screen reads the run folders under the runs
folder (`--runs-dir`), so runs started from the command line (`walkless train`) show up too.
`ctrl+p` opens the command palette; `escape` goes back; `ctrl+q` quits; `f2` saves the screen (its plots and
tables as drawn) as an SVG file in the folder the app was started from.

## Runs
| key | |
|---|---|
| `enter` | monitor the highlighted run |
| `n` | launch a new run (the form comes back as you last left it) |
| `N` | a new run from the highlighted one: the form filled with its settings |
| `space` | mark / unmark a run for comparison |
| `c` | compare the marked runs |
| `t` | Table 2: open the `walkless table2` sweep of the runs folder (its `table2.json`) |
| `T` | open any other sweep: type its folder or its `table2.json` |
| `s` / `e` | score text / evaluate with the run's checkpoint |
| `x` | stop the run (it ends after its current step, state *stopped*) |
| `r` | resume a stopped or failed run from its last checkpoint (when it cannot, the message says why; a resume that fails shows on the run's row) |
| `a` | a note for the run (kept in its folder as `notes.txt`; `#tags` in it are found by the filter) |
| `A` | archive the run: after a yes its folder moves to `RUNS/.archive/` (nothing is deleted; move it back by hand) |
| `/` | filter (words match name, variant, state, tasks, note) |
| `o` / `R` | next sort column / reverse; clicking a column header sorts by it |
| `d` | dismiss a launch that failed before its run began (asks first; run folders are never deleted) |
| `q` | quit (asks first while runs train: they go on training after the app closes) |

The metric columns are the last epoch's dev values; Compare shows each column's best over the epochs.
ETA comes from the logged steps' times (a smoothed rate) plus the dev evaluations still to run; during an
evaluation the progress cell says *evaluating*. A run folder whose `config.json` or `status.json` cannot be
read as a run's is listed as *damaged*, with the reason in its note and detail line. The detail line names
the run's data folder and marks the demo data. Below 110 columns long names are cut in the middle and the
metric headers shortened, so SST, Quora and STS stay in view at 80 and 60 columns.

## Launch
Pick a variant (single-task variants also a task), the encoder, the data folder and hyperparameters
(SMART λ ε σ η β μ for `+smart` variants; CPU threads: 1 is fastest for small models on a busy machine).
An empty data folder means the app's (`--data-dir`, else the demo data), as the field says. The line under the
variant says what it trains; lr and batch size follow the variant (the report's: 1e-3 for pretrain, else 1e-5;
batch 16 under SMART, else 64) until you type your own. The focused field's whole hint is above the footer.
`ctrl+s` starts `walkless train` as a detached process: it keeps training when the app closes.

## Monitor
Training loss per task (smoothed with an exponential moving average: `+` / `-`; `l` log scale, `t` x axis by
step or by minutes), dev metrics per epoch,
the tail of `train.log` (and of the launch log when the run failed to start or resume), and a system line
(CPU and memory of the machine and of the training process, the GPU's memory when there is one). `x` stops the
run, `r` resumes it. Live while the run trains.

## Compare
Choose runs on the left (`space`; a chosen run's box holds X) and a metric: overlaid curves, the report's
Table 2 (best per column marked ★ where two or more runs have a value),
and the hyperparameters that differ between the runs. Live: re-read when a chosen run logs an epoch.

Opened on a Table 2 sweep (`t` on Runs, "Table 2" in the palette, or `walkless-tui --table2 PATH`), the
table is the sweep's `table2.json`: per row our SST / Quora / STS dev numbers beside the report's
(in brackets), seconds per epoch (ours, the report's on a GPU), epochs done and state, with the settings,
machine and commands under it; it refreshes when the sweep rewrites the file (a row reads *training*
while the sweep trains it). The rows' runs are chosen
for the curves; `enter` on a row adds or removes its run.

## Score
Load a checkpoint (a run's best, or any checkpoint folder), then type a sentence (five sentiment
probabilities) or a pair (paraphrase probability and 0–5 similarity).

## Evaluate
Confusion matrices and per-class precision / recall / F1 (the report's Table 3) per epoch from the
run's metrics, STS true vs predicted distributions (Figure 3); or evaluate the best checkpoint on a data
folder (`ctrl+r`: the chosen epoch's checkpoint when the run still keeps it, else the best one; the line
above the tabs says which; a bar shows its progress, `x` cancels it, and a cap evaluates only the first N dev
examples per task). `1`–`4` switch between the SST, Quora, CFIMDB and STS tabs.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark,f1", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Markdown(HELP)
