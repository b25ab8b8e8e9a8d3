"""The report as rich tables. Every latency and energy number sits next to its source label, so a
reader never mistakes qemu's wall time or a model's estimate for a measurement on the board."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table

from edgeq.report.model import Report

STYLE = {"measured": "bold green", "emulated": "yellow", "modelled": "cyan"}


def _src(source: str) -> str:
    return f"[{STYLE.get(source, '')}]{source}[/]"


def _ms(v: float) -> str:
    return f"{v:.3f}" if v < 100 else f"{v:.1f}"


def _joules(j: float) -> str:
    a = abs(j)
    if a < 1e-3:
        return f"{j * 1e6:.3g} µJ"
    return f"{j * 1e3:.3g} mJ" if a < 1 else f"{j:.3g} J"


def _bytes(n: int) -> str:
    return f"{n:,} B" if n < 1024 else f"{n:,} B ({n / 1024:.1f} KiB)"


def _figures(report: Report) -> Table:
    t = Table(title="Latency, load, energy", show_lines=False)
    t.add_column("figure")
    t.add_column("value", justify="right")
    t.add_column("source")
    lat = report.latency
    if lat is not None:
        s = lat.stats
        t.add_row("per inference p50 / p90 / p99", f"{_ms(s.p50_ms)} / {_ms(s.p90_ms)} / {_ms(s.p99_ms)} ms",
                  _src(s.source))
        t.add_row("mean ± std (min – max)", f"{_ms(s.mean_ms)} ± {_ms(s.std_ms)} ({_ms(s.min_ms)} – {_ms(s.max_ms)}) ms",
                  _src(s.source))
        t.add_row("timed runs", f"{s.n} after {lat.warmup} warm-up", "")
        if lat.instructions is not None:
            t.add_row(f"executed instructions ({lat.instructions.tool})", f"{lat.instructions.count:,}",
                      _src(lat.instructions.source))
        for m in lat.modelled:
            t.add_row(f"per inference on the board ({m.method} model)", f"{_ms(m.ms)} ms", _src(m.source))
    if report.load is not None:
        ld = report.load
        t.add_row("load / init", f"{_ms(ld.load_ms)} / {_ms(ld.init_ms)} ms", _src(ld.source))
    if report.energy is not None:
        e = report.energy
        t.add_row(f"energy per inference above idle ({e.method})", _joules(e.per_inference_j), _src(e.source))
        t.add_row("energy per inference incl. idle", _joules(e.total_per_inference_j), _src(e.source))
        if e.source == "modelled":
            t.add_row("power figures", f"idle {e.basis.get('idle_w')} W, load {e.basis.get('load_w')} W",
                      f"{_src('modelled')}: {e.basis.get('power_source', '')}")
        else:
            t.add_row("idle / active power", f"{e.basis.get('idle_w', 0):.3f} / {e.basis.get('active_w', 0):.3f} W",
                      _src(e.source))
    return t


def _layers(report: Report) -> Table | None:
    lat = report.latency
    if lat is None or lat.layers is None:
        return None
    lt = lat.layers
    t = Table(title=f"Per layer (median of {lt.runs} runs, total {_ms(lt.total_ms)} ms)")
    for name, justify in (("#", "right"), ("op", "left"), ("kernel", "left"), (f"median ms ({lt.source})", "right"),
                          ("share", "right"), ("modelled ms (modelled)", "right")):
        t.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in lt.layers:
        t.add_row(str(r.index), r.op, r.kernel, _ms(r.median_ms), f"{r.share:.1%}",
                  "–" if r.modelled_ms is None else _ms(r.modelled_ms))
    return t


def _memory(report: Report) -> Table | None:
    m = report.memory
    if m is None:
        return None
    t = Table(title="Memory")
    t.add_column("region")
    t.add_column("bytes", justify="right")
    t.add_row("arena (activations, scratch)", _bytes(m.arena_bytes))
    t.add_row("static (runtime state)", _bytes(m.static_bytes))
    t.add_row("weights (blob, in place)", _bytes(m.weights_bytes))
    for name, used, avail in (("flash (board)", m.flash_used, m.flash_available),
                              ("RAM (board)", m.ram_used, m.ram_available)):
        if used is not None and avail is not None:
            t.add_row(name, f"{_bytes(used)} of {_bytes(avail)} ({100 * used / avail:.1f} %)")
    if m.rss_bytes is not None:
        t.add_row(f"peak RSS ({_src(m.rss_source or '')})", _bytes(m.rss_bytes))
    elif report.device.emulated:
        t.add_row("peak RSS", "n/a: under emulation it would be the emulator's")
    return t


def _predictions(report: Report) -> Table | None:
    if not report.predictions:
        return None
    t = Table(title=f"Predictions for {len(report.predictions)} inputs (device)")
    for name, justify in (("input", "left"), ("class", "right"), ("score", "right"), ("host reference", "right")):
        t.add_column(name, justify=justify)  # type: ignore[arg-type]
    for p in report.predictions:
        t.add_row(p.input, str(p.top1), f"{p.score:.4g}", str(p.reference_top1))
    return t


def _accuracy(report: Report) -> Table | None:
    a = report.accuracy
    if a is None:
        return None
    t = Table(title=f"Accuracy on {a.n} bundled inputs (device vs host reference)")
    t.add_column("metric")
    t.add_column("value", justify="right")

    def pct(v: float | None) -> str:
        return "–" if v is None else f"{v:.2%}"

    t.add_row("top-1 agreement", pct(a.top1_agreement))
    t.add_row("accuracy vs labels (device / host)", f"{pct(a.accuracy)} / {pct(a.reference_accuracy)}")
    t.add_row("max abs error", f"{a.max_abs_err:.4g} at sample {a.max_abs_err_at[0]}, element {a.max_abs_err_at[1]}")
    t.add_row("MAE / RMSE", f"{a.mae:.4g} / {a.rmse:.4g}")
    t.add_row("L2r / cosine", f"{'–' if a.l2r is None else f'{a.l2r:.4g}'} / {a.cosine:.6f}")
    if a.min_sample_cosine is not None:
        t.add_row("min per-sample cosine vs host", f"{a.min_sample_cosine:.6f}")
    if a.cosine_vs_fp32_mean is not None:
        t.add_row("cosine vs fp32 model (mean / min)", f"{a.cosine_vs_fp32_mean:.4f} / {a.cosine_vs_fp32_min:.4f} "
                  f"(needs mean >= {a.fp32_threshold:g})")
    if a.passed is not None:
        tol = "" if a.tolerance is None else f" (tolerance {a.tolerance:g})"
        t.add_row("check", ("[green]pass[/]" if a.passed else "[bold red]FAIL[/]") + tol)
    return t


def render(report: Report, console: Console | None = None) -> None:
    """Prints the report: where it ran, the figures with their sources, layers, memory, accuracy, verdict."""
    console = console or Console()
    d = report.device
    where = d.name or d.url
    mode = "emulated" if d.emulated else "real device"
    console.print(f"[bold]{report.blob.name}[/] ({_bytes(report.blob.bytes)}, {', '.join(report.blob.formats)}) "
                  f"on [bold]{report.target.id}[/] ({report.target.name}) via {where} [{mode}]")
    if d.default_connection:
        console.print(f"no connection configured for {report.target.id}: used its emulated default {d.url}")
    console.print(f"runner {report.build.binary}; kernels: "
                  + ", ".join(f"{f}={k}" for f, k in sorted(report.build.kernels.items())))
    for table in (_figures(report), _layers(report), _memory(report), _accuracy(report), _predictions(report)):
        if table is not None:
            console.print(table)
    for note in report.notes:
        console.print(f"note: {note}")
    v = report.verdict
    if v.ok:
        console.print("[bold green]OK[/]")
    else:
        console.print(f"[bold red]FAILED[/] (exit code {v.exit_code})")
        for err in v.errors:
            console.print(f"  {err}")


def render_text(report: Report, width: int = 120) -> str:
    """The console rendering as plain text (for logs and tests)."""
    buf = io.StringIO()
    render(report, Console(file=buf, width=width, color_system=None, highlight=False))
    return buf.getvalue()
