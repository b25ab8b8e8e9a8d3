"""`--plot PNG`: latency histogram (the whole distribution, not just the best run) and per-layer bars.

Uses matplotlib's object API with the Agg canvas directly, so it never touches a display or the
global pyplot state of a caller's program.
"""

from __future__ import annotations

from pathlib import Path

from edgeq.errors import EdgeqError
from edgeq.report.model import Report


def plot_report(report: Report, path: str | Path) -> Path:
    """Writes the PNG; the figure's titles carry the source label of every figure drawn."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise EdgeqError("--plot needs matplotlib: pip install matplotlib") from None
    lat = report.latency
    if lat is None:
        raise EdgeqError("nothing to plot: the report has no latency figures")
    layers = lat.layers.layers if lat.layers is not None else []
    fig = Figure(figsize=(11, 4.5) if layers else (6, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2 if layers else 1, squeeze=False)[0]

    s = lat.stats
    ax = axes[0]
    ax.hist(s.samples_ms, bins=min(50, max(5, s.n // 4)), color="tab:blue", alpha=0.8)
    for value, label, style in ((s.p50_ms, "p50", "-"), (s.p99_ms, "p99", "--")):
        ax.axvline(value, color="black", linestyle=style, linewidth=1, label=f"{label} {value:.3g} ms")
    for m, style in zip(lat.modelled, (":", "-.", (0, (5, 1))), strict=False):
        ax.axvline(m.ms, color="tab:cyan", linestyle=style, linewidth=1.5, label=f"{m.method} ({m.source}) {m.ms:.3g} ms")
    ax.set_title(f"latency per inference, {s.n} runs ({s.source})")
    ax.set_xlabel("ms")
    ax.set_ylabel("runs")
    ax.legend(fontsize="small")

    if layers:
        ax = axes[1]
        names = [f"{r.index} {r.op} [{r.kernel}]" for r in layers]
        y = range(len(layers))
        modelled = [r.modelled_ms for r in layers]
        h = 0.4 if any(v is not None for v in modelled) else 0.8
        ax.barh([i - h / 2 if h < 0.8 else i for i in y], [r.median_ms for r in layers], height=h,
                color="tab:blue", label=f"median ({lat.layers.source})")
        if h < 0.8:
            ax.barh([i + h / 2 for i in y], [v or 0.0 for v in modelled], height=h, color="tab:cyan", label="modelled")
        ax.set_yticks(list(y), names, fontsize="small")
        ax.invert_yaxis()
        ax.set_xlabel("ms")
        ax.set_title(f"per layer, median of {lat.layers.runs} runs")
        ax.legend(fontsize="small")
    fig.suptitle(f"{report.blob.name} on {report.target.id} ({'emulated' if report.device.emulated else 'device'})")
    path = Path(path)
    fig.savefig(path, format="png", dpi=100)
    return path
