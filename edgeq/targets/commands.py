"""`edgeq targets list|show|validate`, `edgeq build` and `edgeq fit`: the target registry on the command line."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from edgeq.errors import EdgeqError
from edgeq.targets import latency, mcu, neon, registry
from edgeq.targets.registry import LINUX_FAMILIES, Target


def _console() -> Console:
    return Console(highlight=False, soft_wrap=True)


def _echo_json(data) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def _summary(t: Target) -> dict:
    cpu, mem = t.cpu, t.memory
    if t.family == "fpga":
        f = t.section("fpga")
        hw = f"{f['part']}: {f['lut']} LUT, {f['dsp']} DSP @ {f['clock_mhz']} MHz"
    else:
        hw = f"{cpu['cores']}x {cpu['core']} @ {cpu['freq_mhz']} MHz [{', '.join(t.features)}]"
    if t.family == "mcu":
        memory = f"{mem['flash_kb']} KiB flash, {mem['ram_kb']} KiB RAM"
    elif t.family == "fpga":
        memory = ""
    else:
        memory = f"{mem['ram_mb']} MiB, {t.read_gbps(1)} GB/s"
    return {"id": t.id, "family": t.family, "name": t.name, "hardware": hw, "memory": memory,
            "default_format": t.default_format, "connect": t.connect, "path": str(t.path)}


def generated_config(t: Target) -> dict:
    """What the family's generator makes of the board (shown by `targets show`)."""
    if t.family in LINUX_FAMILIES:
        cfg = neon.config(t)
        costs = {f: {"kernel": k, **vars(latency.kernel_cost(k))} for f, k in latency.kernels_for(t).items()}
        return {"kind": "cpu-build", **cfg.to_json(), "make_vars": cfg.make_vars(), "kernel_costs": costs}
    if t.family == "mcu":
        return {"kind": "mcu", **mcu.config(t)}
    return {"kind": "fpga", **vars(registry.fpga_device(t.id))}


@click.group("targets")
def targets() -> None:
    """Boards edgeq knows (targets/*.toml and EDGEQ_TARGETS_PATH)."""


@targets.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_cmd(as_json: bool) -> None:
    """List every board."""
    rows = [_summary(t) for t in registry.list_targets()]
    if as_json:
        _echo_json(rows)
        return
    table = Table(title="edgeq targets")
    for col in ("id", "family", "hardware", "memory", "-f default", "connect (default)"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["id"], r["family"], r["hardware"], r["memory"], r["default_format"], r["connect"])
    _console().print(table)


@targets.command("show")
@click.argument("target_id")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def show_cmd(target_id: str, as_json: bool) -> None:
    """Show one board and the configuration generated for it."""
    t = registry.get_target(target_id)
    config = generated_config(t)
    if as_json:
        _echo_json({"target": {**t.data, "path": str(t.path)}, "config": config})
        return
    console = _console()
    console.print(f"[bold]{t.id}[/bold]: {t.name} ({t.family})  [dim]{t.path}[/dim]")
    for title, table in t.data.items():
        if not isinstance(table, dict):
            continue
        tab = Table(title=f"[{title}]", show_header=False, title_justify="left")
        tab.add_column("key", style="cyan")
        tab.add_column("value")
        for k, v in table.items():
            tab.add_row(k, hex(v) if k.endswith(("_origin", "_base")) else str(v))
        console.print(tab)
    tab = Table(title=f"generated config ({config['kind']})", show_header=False, title_justify="left")
    tab.add_column("key", style="green")
    tab.add_column("value")
    for k, v in config.items():
        if k not in ("kind", "kernel_costs"):
            tab.add_row(k, json.dumps(v) if isinstance(v, dict | list | tuple) else str(v))
    console.print(tab)
    if "kernel_costs" in config:
        tab = Table(title="kernels (instructions per weight feed the modelled latency)", title_justify="left")
        for col in ("format", "kernel", "insn/weight", "status", "source"):
            tab.add_column(col)
        for f, c in config["kernel_costs"].items():
            tab.add_row(f, c["kernel"], f"{c['insn_per_weight']:.2f}", c["status"], c["source"])
        console.print(tab)


@targets.command("validate")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def validate_cmd(files: tuple[Path, ...], as_json: bool) -> None:
    """Validate board files (default: every file on the search path). Exit 2 if any is wrong."""
    paths = list(files) or list(registry.target_files().values())
    results = []
    for p in paths:
        try:
            registry.load_file(p)
            results.append({"file": str(p), "ok": True, "error": None})
        except EdgeqError as e:
            results.append({"file": str(p), "ok": False, "error": str(e)})
    if as_json:
        _echo_json(results)
    else:
        for r in results:
            click.echo(f"ok    {r['file']}" if r["ok"] else f"FAIL  {r['error']}")
    bad = [r for r in results if not r["ok"]]
    if bad:
        raise EdgeqError(f"{len(bad)} of {len(results)} target file(s) invalid")


@click.command("build")
@click.option("--target", "target_id", required=True, help="Target id (see `edgeq targets list`).")
@click.option("-o", "--out", type=click.Path(path_type=Path, file_okay=False), help="Also copy the build here.")
@click.option("--blob", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="MCU targets: link this blob into flash (production image); without it blobs are uploaded.")
@click.option("--placement", type=click.Choice(["emulated", "board"]), default="emulated", show_default=True,
              help="MCU targets: link for the emulated machine (qemu-system-arm) or the real board.")
@click.option("--lib", is_flag=True, help="Build the library an app links instead: a libedgeq.so that links no C "
              "library (no NEEDED entries) plus include/edgeq/*.h (docs/android.md).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def build_cmd(target_id: str, out: Path | None, blob: Path | None, placement: str, lib: bool, as_json: bool) -> None:
    """Cross-compile the runtime for a target (Linux: edgeq_runner, or --lib; MCU: firmware.elf/.bin); prints the
    build directory."""
    from edgeq.build import build_runtime

    t = registry.get_target(target_id)
    console = Console(stderr=True)
    if t.family == "mcu":
        from edgeq.build.firmware import build_firmware

        if lib:
            raise click.UsageError("--lib builds a shared library for Linux-class targets; MCU targets build firmware")

        arena = mcu.fit(t, blob).ram.parts["arena"] if blob else 0
        with console.status(f"building firmware for {t.id} ({placement}) with {t.build['cc']}", spinner="dots"):
            fw = build_firmware(t, blob, placement=placement, arena_bytes=arena, out=out)
        if as_json:
            _echo_json(fw.to_json())
            return
        click.echo(f"{'cached' if fw.cached else 'built'}: {fw.elf} ({fw.bin.stat().st_size} bytes of flash image)",
                   err=True)
        click.echo(str(fw.directory))
        return
    if t.family not in LINUX_FAMILIES:
        raise EdgeqError(f"`edgeq build` builds Linux-class and MCU targets; {t.id} is family {t.family}")
    if blob:
        raise click.UsageError("--blob is for MCU targets (Linux targets load the blob at run time)")
    with console.status(f"building runtime for {t.id} with {t.build['cc']}", spinner="dots"):
        result = build_runtime(t, out, lib=lib)
    if as_json:
        _echo_json(result.to_json())
        return
    product = result.directory / "libedgeq.so" if lib else result.runner
    click.echo(f"{'cached' if result.cached else 'built'}: {product}", err=True)
    click.echo(str(result.directory))


def _fit_tables(report: mcu.FitReport) -> None:
    console = _console()
    verdict = "[green]fits[/green]" if report.fits else "[red]does NOT fit[/red]"
    console.print(f"{report.blob.name} on {report.target.id} ({report.target.name}): {verdict}")
    table = Table()
    for col in ("region", "part", "bytes"):
        table.add_column(col)
    for region in (report.flash, report.ram):
        for part, size in region.parts.items():
            table.add_row(region.name, part, f"{size:,}")
        style = "green" if region.fits else "red"
        table.add_row(f"[bold]{region.name}[/bold]", "used / available",
                      f"{region.used:,} / {region.available:,}  [{style}]margin {region.margin:+,}[/{style}]")
    console.print(table)
    code = report.code
    console.print(f"arena from: {report.arena_source}; code size: "
                  f"{f'{code.text:,} B text ({code.method})' if code else 'unknown'}; stack budget {report.stack:,} B")
    for note in report.notes:
        console.print(f"note: {note}")
    if not report.fits:
        for region in (report.flash, report.ram):
            if not region.fits:
                console.print(f"[red]{region.name} over by {-region.margin:,} bytes[/red]")
        if report.alternatives:
            ok = [f for f, a in report.alternatives.items() if a["fits"]]
            console.print("formats that would fit: " + (", ".join(ok) if ok else "none (RAM or flash too small)"))


@click.command("fit")
@click.option("--target", "target_id", required=True, help="MCU target id (see `edgeq targets list`).")
@click.argument("blob", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--stack", "stack_bytes", type=click.IntRange(min=0), help="Stack budget in bytes "
              f"(default: the board's stack_kb, else {mcu.DEFAULT_STACK_BYTES}).")
@click.option("--code-bytes", type=click.IntRange(min=0), help="Runtime code size to assume instead of compiling it.")
@click.option("-o", "--out", type=click.Path(path_type=Path, file_okay=False),
              help="Write fit.json, arena_plan.json and memory.ld here.")
@click.option("--placement", type=click.Choice(["emulated", "board"]), default="emulated", show_default=True,
              help="Linker script addresses: the emulated machine's or the real board's.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def fit_cmd(target_id: str, blob: Path, stack_bytes: int | None, code_bytes: int | None, out: Path | None,
            placement: str, as_json: bool) -> None:
    """Does BLOB fit an MCU board? Flash (XIP weights + code) and SRAM (arena + stack). Exit 2 if not."""
    t = registry.get_target(target_id)
    code = mcu.CodeSize(code_bytes, 0, 0, "given") if code_bytes is not None else None
    report = mcu.fit(t, blob, stack_bytes, code)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "fit.json").write_text(json.dumps(report.to_json(), indent=2))
        (out / "arena_plan.json").write_text(json.dumps(report.arena.to_json(), indent=2))
        (out / "memory.ld").write_text(mcu.linker_script(t, report.ram.parts["arena"], report.stack, placement))
    if as_json:
        _echo_json(report.to_json())
    else:
        _fit_tables(report)
    if not report.fits:
        over = "; ".join(f"{r.name} over by {-r.margin:,} bytes" for r in (report.flash, report.ram) if not r.fits)
        raise EdgeqError(f"{blob.name} does not fit {t.id}: {over}")
