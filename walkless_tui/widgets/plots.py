"""Plotext plots that draw from data handed to them: line curves (losses, dev metrics) and histograms.

The figure is rebuilt inside ``render`` (so it always fits the widget's size) from at most
``MAX_POINTS`` points per curve; callers downsample before ``set_series`` (see ``series.smooth_for_plot``)
and this widget enforces the cap anyway. A plot that cannot be drawn shows a message, never a traceback.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import RenderResult
from textual_plotext import PlotextPlot

from walkless_tui.series import MAX_POINTS, downsample


def integer_ticks(xs: list, most: int = 6) -> list[int]:
    """Up to ``most`` evenly spread whole-number ticks when x is a step or an epoch count ([] otherwise)."""
    if not xs or not all(isinstance(x, int) for x in xs):
        return []
    lo, hi = min(xs), max(xs)
    n = min(most, hi - lo + 1)
    return sorted({round(lo + i * (hi - lo) / (n - 1)) for i in range(n)}) if n > 1 else [lo]


# (plotext colour, rich colour) of the curves in order; the legend under the plot uses the same colours
COLOURS = [("cyan", "cyan"), ("orange", "dark_orange"), ("green", "green"), ("magenta", "magenta"),
           ("blue", "blue"), ("red", "red"), ("yellow", "yellow"), ("white", "white")]


class CurvePlot(PlotextPlot):
    """Several named curves on one set of axes, their legend on its own line(s) under the plot (plotext's
    own legend sits on the canvas and hides the first points)."""

    def __init__(self, title: str = "", xlabel: str = "", ylabel: str = "", empty: str = "no data yet",
                 **kwargs):
        super().__init__(**kwargs)
        self.title, self.xlabel, self.ylabel, self.empty = title, xlabel, ylabel, empty
        self.series: dict[str, tuple[list, list]] = {}
        self.log_y = False  # a log scale for y (losses); ignored while a value is not positive

    def set_series(self, series: dict[str, tuple[list, list]], title: str | None = None,
                   ylabel: str | None = None) -> None:
        self.series = {k: downsample(xs, ys, MAX_POINTS) for k, (xs, ys) in series.items() if len(xs)}
        if title is not None:
            self.title = title
        if ylabel is not None:
            self.ylabel = ylabel
        self.refresh()

    @property
    def points_drawn(self) -> int:
        return sum(len(xs) for xs, _ in self.series.values())

    def draw(self) -> None:
        plt = self.plt
        plt.clear_figure()
        plt.title(self.title)
        plt.xlabel(self.xlabel)
        plt.ylabel(self.ylabel)
        for i, (xs, ys) in enumerate(self.series.values()):
            colour = COLOURS[i % len(COLOURS)][0]
            if len(xs) == 1:
                plt.scatter(xs, ys, marker="dot", color=colour)
            else:
                plt.plot(xs, ys, marker="braille", color=colour)
        ticks = integer_ticks([x for xs, _ in self.series.values() for x in xs])
        if ticks:
            plt.xticks(ticks, [str(t) for t in ticks])
        if self.log_y and all(y > 0 for _, ys in self.series.values() for y in ys):
            plt.yscale("log")

    def legend(self) -> Text:
        """``── name`` per curve in its colour, one line (wrapped when it does not fit)."""
        text = Text(justify="center")
        for i, name in enumerate(self.series):
            if i:
                text.append("   ")
            text.append("━━ ", style=COLOURS[i % len(COLOURS)][1])
            text.append(name)
        return text

    def render(self) -> RenderResult:
        if not self.series:
            return Text(f"{self.title}\n\n{self.empty}", justify="center", style="dim")
        try:
            self.draw()
            legend = self.legend()
            width = max(1, self.size.width)
            lines = min(3, len(legend.wrap(self.app.console, width)))
            height = max(1, self.size.height - lines)
            self._plot.plotsize(width, height)
            self._plot._set_size(width, height)  # as PlotextPlot.render does (textual-plotext issue 5)
            self._plot.theme(self._get_plotext_theme_name(self.app.theme))
            return Text.from_ansi(self._plot.build().rstrip("\n")) + Text("\n") + legend
        except Exception as e:  # plotext is picky about odd data; a plot must never take the app down
            return Text(f"{self.title}: cannot draw ({type(e).__name__}: {e})", style="red")


class HistogramPlot(PlotextPlot):
    """A histogram of values in a fixed range (STS scores 0..5, as the report's Figure 3)."""

    def __init__(self, title: str = "", lo: float = 0.0, hi: float = 5.0, bins: int = 25, **kwargs):
        super().__init__(**kwargs)
        self.title, self.lo, self.hi, self.bins = title, lo, hi, bins
        self.values: list[float] = []

    def set_values(self, values: list[float]) -> None:
        self.values = [float(v) for v in values]
        self.refresh()

    def counts(self) -> list[int]:
        width = (self.hi - self.lo) / self.bins
        out = [0] * self.bins
        for v in self.values:
            out[min(self.bins - 1, max(0, int((v - self.lo) / width)))] += 1
        return out

    def render(self) -> RenderResult:
        if not self.values:
            return Text(f"{self.title}\n\nno values", justify="center", style="dim")
        try:
            plt = self.plt
            plt.clear_figure()
            plt.title(f"{self.title} (n={len(self.values)})")
            width = (self.hi - self.lo) / self.bins
            centers = [self.lo + width * (i + 0.5) for i in range(self.bins)]
            plt.bar(centers, self.counts(), width=0.8)
            ticks = list(range(int(self.lo), int(self.hi) + 1))
            plt.xticks(ticks, [str(t) for t in ticks])
            plt.xlim(self.lo, self.hi)
            plt.xlabel("score")
            return super().render()
        except Exception as e:
            return Text(f"{self.title}: cannot draw ({type(e).__name__}: {e})", style="red")
