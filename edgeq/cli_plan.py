"""`edgeq plan`: a mixed-precision plan for a target and budget (edgeq/planner.py), and reading it back
for `edgeq pack --plan`."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import click
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from edgeq.blob.writer import atomic_write, serialize
from edgeq.errors import EdgeqError
from edgeq.graph import Graph

PLAN_VERSION = 1


def flash_cap(target, graph: Graph) -> tuple[int, dict]:
    """Bytes the blob may take in the MCU's flash (flash minus runtime code/data), after checking that
    the RAM side (arena, stack — the same for every weight format) fits at all."""
    from edgeq.errors import BuildError
    from edgeq.targets import mcu

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "base.edgeq"
        atomic_write(path, serialize(graph))
        try:
            rep = mcu.fit(target, path)
        except BuildError as e:  # no Cortex-M build of the runtime here: plan without its code size, say so
            rep = mcu.fit(target, path, code=mcu.CodeSize(0, 0, 0, "unknown"))
            rep.notes.append(f"runtime code size unknown (Cortex-M build failed: {str(e).splitlines()[0]}); "
                             "flash cap excludes it")
    if not rep.ram.fits:
        raise EdgeqError(f"the model's activations do not fit {target.id}'s RAM whatever the weight format: "
                         f"{rep.ram.used:,} of {rep.ram.available:,} bytes (arena {rep.ram.parts['arena']:,})")
    code = rep.flash.parts["runtime code"] + rep.flash.parts["runtime data (init)"]
    return rep.flash.available - code, rep.to_json()


def make_plan(model: Path, calib: Path, target_id: str, budget_kb: float | None, max_latency_ms: float | None,
              group: int = 32, progress=None) -> dict:
    """Sensitivity -> choice -> measured verdict beside the uniform formats; the plan file's content."""
    from edgeq.cli_pack import calibration_data, load_model
    from edgeq.planner import PLAN_FORMATS, Planner
    from edgeq.targets.registry import get_target

    target = get_target(target_id)
    if target.family == "fpga":
        raise EdgeqError(f"target {target.id} is an FPGA: plan for it with `edgeq fpga` (no CPU latency model)")
    fg = load_model(model)
    if isinstance(fg, Graph):
        raise EdgeqError(f"{model}: arrives already quantized ({model.suffix}); plans are for float .pt2 models")
    x, x_test, y_test = calibration_data(calib, fg, model)
    if x_test is None or y_test is None:
        raise EdgeqError(f"{calib}: needs x_test and y_test to measure the plan's accuracy")
    planner = Planner(fg, x, target, group=group, x_test=x_test, y_test=y_test, progress=progress)
    caps = {}
    if budget_kb is not None:
        caps["budget"] = int(budget_kb * 1024)
    fit = None
    if target.family == "mcu":
        caps["flash"], fit = flash_cap(target, planner.graph({}))
    max_bytes = min(caps.values()) if caps else None
    max_s = max_latency_ms / 1e3 if max_latency_ms is not None else None
    costs = planner.costs()
    if max_bytes is not None and planner.smallest_bytes(costs) > max_bytes:
        raise EdgeqError(f"nothing fits {max_bytes:,} bytes ({', '.join(f'{k} {v:,}' for k, v in caps.items())}): "
                         f"the smallest per-layer choice of {'/'.join(PLAN_FORMATS)} is "
                         f"{planner.smallest_bytes(costs):,} bytes")
    sens = planner.sensitivity(costs)

    def fits(c) -> list[str]:
        why = []
        if max_bytes is not None and c.blob_bytes > max_bytes:
            why.append(f"{c.blob_bytes:,} bytes > {max_bytes:,}")
        if max_latency_ms is not None and c.latency_ms is not None and c.latency_ms > max_latency_ms:
            why.append(f"{c.latency_ms:.3f} ms > {max_latency_ms} ms (modelled)")
        return why

    uniform = []
    for fmt in PLAN_FORMATS:
        progress and progress(f"uniform {fmt}")
        c = planner.candidate(f"uniform {fmt}", {n: fmt for n in planner.layers})
        c.why_not = fits(c)
        c.fits = not c.why_not
        uniform.append(c)
    cap = max_bytes
    chosen = None
    for _ in range(3):  # the metadata's few bytes are not in the per-layer costs: tighten and re-solve
        layers = planner.solve(sens, cap, max_s)
        if layers is None:
            break
        chosen = planner.candidate("plan", layers)
        chosen.why_not = fits(chosen)
        chosen.fits = not chosen.why_not
        if chosen.fits:
            break
        cap = cap - (chosen.blob_bytes - max_bytes)
    if chosen is None or not chosen.fits:
        limits = [f"{k} {v:,} bytes" for k, v in caps.items()]
        if max_latency_ms is not None:
            fastest = min(uniform, key=lambda c: c.latency_ms)
            limits.append(f"latency <= {max_latency_ms} ms (modelled; the fastest, {fastest.label}, is "
                          f"{fastest.latency_ms:.4f} ms)")
        smallest = min(uniform, key=lambda c: c.blob_bytes)
        raise EdgeqError(f"no per-layer choice of {'/'.join(PLAN_FORMATS)} fits {'; '.join(limits)} (the smallest "
                         f"blob, {smallest.label}, is {smallest.blob_bytes:,} bytes)")
    return {
        "edgeq_plan": PLAN_VERSION, "model": str(model), "target": target.id, "group": group,
        "layers": chosen.layers, "limits": {"max_bytes": max_bytes, "caps_bytes": caps,
                                            "max_latency_ms": max_latency_ms},
        "plan": chosen.to_json(), "uniform": [c.to_json() for c in uniform],
        "sensitivity": {"metric": "mean KL(float || quantized) increase over all-int8, calibration inputs",
                        **{k: sens[k] for k in ("loss", "bytes", "accuracy", "fixed_bytes", "baseline_kl")},
                        "modelled_ms": {n: {f: s * 1e3 for f, s in v.items()} for n, v in sens["seconds"].items()}},
        "fit": fit,
        "size_note": "blob bytes without bundled test data (edgeq pack --plan ... --tests 0)",
    }


def read_plan(path: Path, layer_names: list[str]) -> tuple[dict[str, str], int]:
    """(layer -> format, Q4 group) from a plan file, checked against the model's layers."""
    from edgeq.formats import FORMATS

    try:
        plan = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise EdgeqError(f"{path}: cannot read plan ({e})") from None
    if not isinstance(plan, dict) or plan.get("edgeq_plan") != PLAN_VERSION or not isinstance(plan.get("layers"), dict):
        raise EdgeqError(f"{path}: not an edgeq plan (version {PLAN_VERSION}; written by `edgeq plan -o`)")
    layers = plan["layers"]
    missing, unknown = sorted(set(layer_names) - set(layers)), sorted(set(layers) - set(layer_names))
    if missing or unknown:
        raise EdgeqError(f"{path}: the plan does not match the model (model layers without a format: "
                         f"{', '.join(missing) or 'none'}; plan layers not in the model: {', '.join(unknown) or 'none'})")
    bad = {n: f for n, f in layers.items() if f not in FORMATS}
    if bad:
        raise EdgeqError(f"{path}: unknown format(s) {bad} (formats: {', '.join(FORMATS)})")
    group = plan.get("group", 32)
    if group not in (32, 64, 128):
        raise EdgeqError(f"{path}: group must be 32, 64 or 128, got {group!r}")
    return dict(layers), group


def _print(plan: dict) -> None:
    console = Console(highlight=False, width=max(Console().width, 110))
    lim = plan["limits"]
    caps = ", ".join(f"{k} {v:,} B" for k, v in lim["caps_bytes"].items()) or "none"
    console.print(f"plan for {plan['target']}: size caps {caps}"
                  + (f", latency <= {lim['max_latency_ms']} ms (modelled)" if lim["max_latency_ms"] else ""))
    sens = plan["sensitivity"]
    t = Table(title="per layer, only that layer changed from i8: KL increase / test accuracy (measured) / bytes")
    t.add_column("layer")
    for f in ("t158", "t2", "q4", "i8"):
        t.add_column(f, justify="right")
    t.add_column("chosen")
    for name, losses in sens["loss"].items():
        t.add_row(name, *(f"{losses[f]:.3f} {100 * sens['accuracy'][name][f]:.1f}% {sens['bytes'][name][f]}"
                          for f in ("t158", "t2", "q4", "i8")), plan["layers"][name])
    console.print(t)
    t = Table(title="plan vs uniform formats")
    for col in ("choice", "bytes", "ms (modelled)", "accuracy (measured)", "KL", "fits"):
        t.add_column(col, justify="left" if col == "choice" else "right")
    for c in [plan["plan"], *plan["uniform"]]:
        label = c["label"] + (" " + ",".join(c["layers"].values()) if c["label"] == "plan" else "")
        t.add_row(label, f"{c['blob_bytes']:,}", "–" if c["latency_ms"] is None else f"{c['latency_ms']:.4f}",
                  f"{100 * c['accuracy']:.2f}%", f"{c['kl']:.4f}",
                  "yes" if c["fits"] else "no: " + "; ".join(c["why_not"]))
    console.print(t)


@click.command("plan")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--target", "target_id", required=True, help="Board id (see `edgeq targets list`).")
@click.option("--calib", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help=".npz with 'x' (calibration, sensitivity) and 'x_test'/'y_test' (measured accuracy).")
@click.option("--budget-kb", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Largest blob (KiB, without bundled test data).")
@click.option("--max-latency-ms", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Largest modelled latency of one inference on the target.")
@click.option("--group", type=click.Choice(["32", "64", "128"]), default="32", show_default=True, help="Q4 group size.")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), help="Write the plan (JSON) here.")
@click.option("--json", "as_json", is_flag=True)
def plan_cmd(model: Path, target_id: str, calib: Path, budget_kb: float | None, max_latency_ms: float | None,
             group: str, output: Path | None, as_json: bool) -> None:
    """Choose per-layer formats (t158/t2/q4/i8) that fit TARGET and the budget with the least accuracy loss."""
    with Progress(transient=True, disable=as_json) as bar:
        task = bar.add_task("planning", total=None)
        plan = make_plan(model, calib, target_id, budget_kb, max_latency_ms, int(group),
                         progress=lambda s: bar.update(task, description=s))
    if output is not None:
        atomic_write(output, json.dumps(plan, indent=2).encode())
    if as_json:
        click.echo(json.dumps(plan, indent=2))
        return
    _print(plan)
    if output is not None:
        click.echo(f"wrote {output} (apply with: edgeq pack {model} --plan {output} --calib {calib} -o OUT.edgeq)")
