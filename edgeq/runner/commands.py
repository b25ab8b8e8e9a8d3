"""`edgeq deploy` and `edgeq devices`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console

from edgeq.errors import AccuracyError


@click.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--target", "target_id", default="", help="Board id (see `edgeq targets list`).")
@click.option("-f", "--format", "fmt", default=None, help="Weight format when MODEL is not a blob [target default].")
@click.option("--calib", type=click.Path(path_type=Path, dir_okay=False),
              help=".npz with 'x' (calibration) and 'x_test'/'y_test' (bundled accuracy check) when packing.")
@click.option("--connect", default=None, help="ssh://user@host, adb://serial, qemu-user://CPU, local:// ...")
@click.option("--device", default=None, help="A name from ~/.config/edgeq/devices.toml.")
@click.option("--runs", type=click.IntRange(1, 100000), default=20, show_default=True)
@click.option("--warmup", type=click.IntRange(0, 10000), default=3, show_default=True)
@click.option("--timeout", type=float, default=600.0, show_default=True, help="Seconds for the device run.")
@click.option("--mode", type=click.Choice(["upload", "linked"]), default="upload", show_default=True,
              help="MCU targets: upload the blob over serial into RAM, or link it into the flash image.")
@click.option("--no-flash", is_flag=True, help="MCU targets on serial://: the board already runs the firmware.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (docs/report-schema.md).")
@click.option("--plot", type=click.Path(path_type=Path, dir_okay=False), help="Write latency plots to this PNG.")
@click.option("--pubkey", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Ed25519 public key (.pub): host and device refuse a blob not signed by it, unsigned "
                   "included (needed when the target requires signatures).")
def deploy(model: Path, target_id: str, fmt: str | None, calib: Path | None, connect: str | None, device: str | None,
           runs: int, warmup: int, timeout: float, mode: str, no_flash: bool, as_json: bool, plot: Path | None,
           pubkey: Path | None) -> None:
    """Deploy MODEL (.pt2 or .edgeq) to a board, profile it and check it against the host reference."""
    from edgeq.report.console import render
    from edgeq.runner.deploy import deploy as run_deploy
    from edgeq.runner.mcu_deploy import Options

    if not target_id and not device:
        raise click.UsageError("give --target ID or --device NAME")
    err = Console(stderr=True)
    with err.status("deploying") as status:
        report = run_deploy(target_id, model, fmt=fmt, connect=connect, device=device, calib=calib, runs=runs,
                            warmup=warmup, timeout=timeout, progress=lambda s: status.update(s), public_key=pubkey,
                            mcu_options=Options(mode=mode, flash=not no_flash))
    for note in report.notes[:1]:
        err.print(f"note: {note}")
    if as_json:
        click.echo(report.to_json())
    else:
        render(report)
    if plot:
        from edgeq.report.plot import plot_report

        plot_report(report, plot)
    if not report.verdict.ok:
        raise AccuracyError(report.verdict.errors[0] if report.verdict.errors else "accuracy check failed")


@click.command()
@click.option("--json", "as_json", is_flag=True)
def devices(as_json: bool) -> None:
    """List reachable devices: the inventory, adb devices and serial ports."""
    import shutil
    import subprocess

    from serial.tools import list_ports

    from edgeq.runner.devices import inventory_path, load_inventory

    found = [{"name": d.name, "target": d.target, "connect": d.connect, "source": str(inventory_path())}
             for d in load_inventory().values()]
    if shutil.which("adb"):
        try:
            out = subprocess.run(["adb", "devices"], capture_output=True, text=True, timeout=10, check=False).stdout
            for line in out.splitlines()[1:]:
                if "\tdevice" in line:
                    found.append({"name": line.split()[0], "target": "android-arm64",
                                  "connect": f"adb://{line.split()[0]}", "source": "adb"})
        except subprocess.TimeoutExpired:
            pass
    for port in list_ports.comports():
        found.append({"name": port.device, "target": "", "connect": f"serial://{port.device}",
                      "source": port.description})
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    if not found:
        click.echo("no devices: add one to " + str(inventory_path()) + " or attach a board")
    for d in found:
        click.echo(f"{d['name']:24} {d['target'] or '-':14} {d['connect']:40} {d['source']}")
    sys.stdout.flush()
