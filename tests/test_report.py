"""Report: JSON round trip, strict reading, the documented schema, console source labels, the PNG plot."""

from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
from pathlib import Path

import numpy as np
import pytest

from edgeq.errors import EdgeqError
from edgeq.report import (
    Accuracy,
    BlobInfo,
    BuildInfo,
    DeviceInfo,
    InstructionCount,
    Latency,
    LatencyStats,
    LayerTable,
    LoadTime,
    Memory,
    ModelledLatency,
    Prediction,
    Report,
    TargetInfo,
    Verdict,
    accuracy_metrics,
    build,
)
from edgeq.report.console import render_text
from edgeq.report.plot import plot_report
from edgeq.runner import profile
from edgeq.runner.energy import ModelledEnergy, ReplayMeter, measure_energy
from edgeq.targets import latency as model
from edgeq.targets.registry import get_target

DOC = Path(__file__).resolve().parents[1] / "docs" / "report-schema.md"
DATA = Path(__file__).parent / "data" / "energy"


def emulated_report() -> Report:
    """What `edgeq deploy --target rpi5` on the emulated default produces, assembled from the libraries."""
    target = get_target("rpi5")
    rng = np.random.default_rng(0)
    runs = 0.0012 + rng.gamma(2.0, 0.0001, size=50)
    per_layer = [[(0, "linear", "neon_dotprod/t2_matvec", 0.0008 + 1e-5 * k), (1, "relu", "ref/relu", 0.0001),
                  (2, "linear", "neon_dotprod/i8_matvec", 0.0002)] for k in range(5)]
    est = model.predict(target, [model.Layer("0_linear", 64, 256, "neon_dotprod/t2_matvec", 2.0625),
                                 model.Layer("2_linear", 10, 64, "neon_dotprod/i8_matvec", 8.0)], other_ops=1)
    roofline = profile.modelled_latency(est)
    table = profile.attach_modelled_layers(profile.layer_stats(per_layer, "emulated"), est)
    ref = rng.normal(size=(16, 10))
    acc = accuracy_metrics(ref + 1e-3 * rng.normal(size=ref.shape), ref, labels=ref.argmax(axis=1))
    return Report(
        target=TargetInfo(target.id, target.name, target.family),
        device=DeviceInfo("qemu-user://cortex-a76", "qemu-user", "localhost", emulated=True, default_connection=True),
        blob=BlobInfo("mlp_t2.edgeq", 21_504, ["t2", "i8"], sha256="ab" * 32),
        build=BuildInfo("build/rpi5/edgeq_run", {"t2": "neon_dotprod/t2_matvec", "i8": "neon_dotprod/i8_matvec"},
                        ["-O3"]),
        verdict=Verdict(ok=True, exit_code=0),
        latency=Latency(warmup=5, stats=build(LatencyStats, profile.latency_stats(runs, "emulated")),
                        modelled=[build(ModelledLatency, roofline),
                                  build(ModelledLatency, profile.modelled_from_instructions(target, 3_000_000))],
                        instructions=build(InstructionCount, profile.instruction_count(3_000_000, "qemu insn plugin")),
                        layers=build(LayerTable, table)),
        load=LoadTime("emulated", 0.8, 0.3),
        memory=Memory(arena_bytes=4096, static_bytes=512, weights_bytes=17_000),
        energy=ModelledEnergy(target).energy(roofline["ms"], "modelled", "roofline"),
        accuracy=build(Accuracy, {**acc, "tolerance": 0.01, "passed": True}),
        notes=["no connection configured for rpi5: used qemu-user://cortex-a76"],
        predictions=[Prediction("7.png", 7, 0.93, 7)],
        edgeq_version="0.1.0",
    )


def minimal_report() -> Report:
    return Report(TargetInfo("host", "this machine", "host"), DeviceInfo("local://", "local", "localhost", False),
                  BlobInfo("x.edgeq", 100, ["q4"]), BuildInfo("edgeq_run", {}),
                  Verdict(ok=False, exit_code=3, errors=["local://: runner crashed (signal 11)"]))


def device_report() -> Report:
    """A real board over SSH: measured latency, RSS and energy (the PMIC trace replayed)."""
    r = minimal_report()
    r.device = DeviceInfo("ssh://pi@lab-pi", "ssh", "lab-pi", emulated=False, name="lab-pi")
    r.latency = Latency(warmup=3, stats=build(LatencyStats, profile.latency_stats([0.001, 0.0011], "measured")))
    r.memory = Memory(4096, 512, 17_000, rss_bytes=2_400_000, rss_source="measured")
    r.energy = measure_energy(ReplayMeter(DATA / "replay_rpi5.csv"), lambda: (150, 3.0))
    r.verdict = Verdict(ok=True, exit_code=0)
    return r


def test_json_round_trip():
    for r in (emulated_report(), minimal_report(), device_report()):
        text = r.to_json()
        back = Report.from_json(text)
        assert back == r
        assert back.to_json() == text
    d = json.loads(emulated_report().to_json())
    assert d["schema_version"] == 1 and d["latency"]["stats"]["source"] == "emulated"
    assert [m["source"] for m in d["latency"]["modelled"]] == ["modelled", "modelled"]
    assert d["energy"]["source"] == "modelled" and d["memory"]["rss_bytes"] is None


def _paths(cls: type, prefix: str = "") -> list[str]:
    """Dotted paths of every field, descending into nested dataclasses (list items as `[]`)."""
    out = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        path = f"{prefix}{f.name}"
        out.append(path)
        tp = hints[f.name]
        union = typing.get_origin(tp) in (typing.Union, types.UnionType)
        for a in [a for a in typing.get_args(tp) if a is not type(None)] if union else [tp]:
            if typing.get_origin(a) is list and dataclasses.is_dataclass(typing.get_args(a)[0]):
                out += _paths(typing.get_args(a)[0], f"{path}[].")
            elif dataclasses.is_dataclass(a):
                out += _paths(a, f"{path}.")
    return out


def test_every_field_is_documented():
    documented = set(re.findall(r"^\| `([^`]+)` \|", DOC.read_text(), re.MULTILINE))
    fields = set(_paths(Report))
    assert fields - documented == set(), "fields missing from docs/report-schema.md"
    assert documented - fields == set(), "docs/report-schema.md documents fields that do not exist"
    d = emulated_report().to_dict()
    for path in fields:  # and every one of them is present in the JSON (null when absent, never left out)
        node: typing.Any = d
        for part in path.split("."):
            node = node[0] if isinstance(node, list) else node
            assert part.removesuffix("[]") in node, path
            node = node[part.removesuffix("[]")]


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["latency"]["stats"].update(source="simulated"), "latency.stats.source is 'simulated'"),
    (lambda d: d["latency"]["stats"].update(source="measured"), "'measured' but the device is emulated"),
    (lambda d: d["load"].update(source="measured"), r"load\.source is 'measured' but the device is emulated"),
    (lambda d: d["memory"].update(rss_bytes=10_000, rss_source="measured"), r"memory\.rss_source is 'measured'"),
    (lambda d: d["energy"].update(source="emulated"), "energy.source"),
    (lambda d: d["blob"].update(colour="red"), r"report\.blob\.colour: unknown key"),
    (lambda d: d["blob"].pop("bytes"), r"report\.blob\.bytes: missing"),
    (lambda d: d["blob"].update(bytes="many"), r"report\.blob\.bytes: expected int"),
    (lambda d: d["latency"]["layers"]["layers"][1].update(share=True), r"layers\[1\]\.share: expected float"),
    (lambda d: d.update(schema_version=2), "newer than this edgeq reads"),
])
def test_strict_reading(mutate, message):
    d = emulated_report().to_dict()
    mutate(d)
    with pytest.raises(EdgeqError, match=message):
        Report.from_json(json.dumps(d))


def test_console_labels_every_figure():
    text = render_text(emulated_report())
    figures = text.split("Latency, load, energy", 1)[1].split("Per layer", 1)[0]
    number_rows = [ln for ln in figures.splitlines() if re.search(r"\d (ms|µJ|mJ|J|W)\b|\d,\d{3}", ln)]
    assert len(number_rows) >= 8
    for row in number_rows:
        assert re.search(r"\b(measured|emulated|modelled)\b", row), row
    assert "median ms (emulated)" in text and "modelled ms (modelled)" in text
    assert "neon_dotprod/t2_matvec" in text and "top-1 agreement" in text
    assert "n/a: under emulation" in text and "used its emulated default" in text and "OK" in text
    real = render_text(device_report())
    assert re.search(r"energy per inference above idle \(replay\).*measured", real)
    assert re.search(r"peak RSS \(measured\).*2,400,000 B", real)
    failed = render_text(minimal_report())
    assert "FAILED (exit code 3)" in failed and "runner crashed" in failed


def test_plot_is_a_png(tmp_path):
    out = plot_report(emulated_report(), tmp_path / "report.png")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    r = emulated_report()
    assert r.latency is not None
    r.latency.layers = None
    assert plot_report(r, tmp_path / "hist.png").stat().st_size > 0
    with pytest.raises(EdgeqError, match="nothing to plot"):
        plot_report(minimal_report(), tmp_path / "none.png")
