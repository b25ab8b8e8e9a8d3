"""The deploy report as dataclasses: one schema for JSON, console and plots (docs/report-schema.md).

JSON round-trips exactly: `Report.from_json(r.to_json()) == r`. Reading is strict — an unknown or
missing key, a wrong type, a bad source label or a report from a newer schema is one EdgeqError naming
the key path — so tools that consume `--json` can rely on what they get.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import types
from dataclasses import dataclass, field
from typing import Any, Self, TypeVar, Union, get_args, get_origin, get_type_hints

from edgeq.errors import EdgeqError

SCHEMA_VERSION = 1
T = TypeVar("T")
SOURCES = ("measured", "emulated", "modelled")


@dataclass
class TargetInfo:
    id: str
    name: str
    family: str


@dataclass
class DeviceInfo:
    url: str
    scheme: str
    host: str
    emulated: bool
    name: str | None = None          # inventory name (--device), None for a bare --connect URL
    default_connection: bool = False  # the target's emulated default was used because none was configured


@dataclass
class BlobInfo:
    name: str
    bytes: int
    formats: list[str]
    sha256: str | None = None


@dataclass
class BuildInfo:
    binary: str
    kernels: dict[str, str]          # weight format -> kernel the runtime runs
    cflags: list[str] = field(default_factory=list)


@dataclass
class LatencyStats:
    source: str
    n: int
    mean_ms: float
    std_ms: float
    min_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    samples_ms: list[float]


@dataclass
class ModelledLatency:
    method: str                      # "roofline" | "instructions"
    ms: float
    basis: dict[str, Any]
    source: str = "modelled"


@dataclass
class InstructionCount:
    count: int
    tool: str
    source: str = "emulated"


@dataclass
class LayerRow:
    index: int
    op: str
    kernel: str
    median_ms: float
    share: float
    modelled_ms: float | None = None


@dataclass
class LayerTable:
    source: str
    runs: int
    total_ms: float
    layers: list[LayerRow]


@dataclass
class Latency:
    warmup: int
    stats: LatencyStats
    modelled: list[ModelledLatency] = field(default_factory=list)
    instructions: InstructionCount | None = None
    layers: LayerTable | None = None


@dataclass
class LoadTime:
    source: str
    load_ms: float                   # blob open + verify
    init_ms: float                   # graph set-up + arena plan, before the first inference


@dataclass
class Memory:
    arena_bytes: int
    static_bytes: int
    weights_bytes: int
    rss_bytes: int | None = None     # peak RSS of the runner; only on a real device (under qemu it is qemu's)
    rss_source: str | None = None
    flash_used: int | None = None     # MCU: image (code + blob) in the board's flash
    flash_available: int | None = None
    ram_used: int | None = None       # MCU: data + bss + stack + arena (+ an uploaded blob) in the board's RAM
    ram_available: int | None = None


@dataclass
class Energy:
    source: str                      # "measured" | "modelled"
    method: str                      # meter name, or "power x latency"
    per_inference_j: float           # above idle: what one inference adds
    total_per_inference_j: float     # idle included: what the board draws per inference
    basis: dict[str, Any]


@dataclass
class Accuracy:
    n: int
    top1_agreement: float | None
    accuracy: float | None
    reference_accuracy: float | None
    max_abs_err: float
    max_abs_err_at: list[int]
    mae: float
    rmse: float
    l2r: float | None
    cosine: float
    tolerance: float | None = None
    passed: bool | None = None
    # embedding models (blob metadata accuracy.metric = "cosine"): per-sample cosine vs the host reference,
    # and vs the unquantized fp32 model's embeddings bundled in the blob
    min_sample_cosine: float | None = None
    cosine_vs_fp32_mean: float | None = None
    cosine_vs_fp32_min: float | None = None
    fp32_threshold: float | None = None


@dataclass
class Verdict:
    ok: bool
    exit_code: int
    errors: list[str] = field(default_factory=list)


@dataclass
class Prediction:
    """The device's top-1 answer for one user input (`edgeq deploy --input DIR`)."""

    input: str
    top1: int
    score: float  # the top-1 output value (a probability when the model ends in softmax)
    reference_top1: int  # the host reference executor's answer for the same input


@dataclass
class Report:
    target: TargetInfo
    device: DeviceInfo
    blob: BlobInfo
    build: BuildInfo
    verdict: Verdict
    latency: Latency | None = None
    load: LoadTime | None = None
    memory: Memory | None = None
    energy: Energy | None = None
    accuracy: Accuracy | None = None
    notes: list[str] = field(default_factory=list)
    predictions: list[Prediction] = field(default_factory=list)
    edgeq_version: str = ""
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Rules the types alone cannot express; each broken one is an EdgeqError naming the field."""
        lat = self.latency
        checks: list[tuple[str, str | None, tuple[str, ...]]] = [
            ("load.source", self.load and self.load.source, SOURCES),
            ("energy.source", self.energy and self.energy.source, ("measured", "modelled")),
            ("memory.rss_source", self.memory and self.memory.rss_source, ("measured",)),
        ]
        if lat is not None:
            checks += [("latency.stats.source", lat.stats.source, SOURCES),
                       ("latency.instructions.source", lat.instructions and lat.instructions.source, ("emulated",)),
                       ("latency.layers.source", lat.layers and lat.layers.source, SOURCES)]
            checks += [(f"latency.modelled[{i}].source", m.source, ("modelled",)) for i, m in enumerate(lat.modelled)]
        for path, value, allowed in checks:
            if value is not None and value not in allowed:
                raise EdgeqError(f"report: {path} is {value!r}, expected one of {', '.join(allowed)}")
        if self.device.emulated:
            for path, value, _ in checks:
                if value == "measured":  # incl. RSS: under qemu-user it would be the emulator's
                    raise EdgeqError(f"report: {path} is 'measured' but the device is emulated")
        if self.memory is not None and (self.memory.rss_bytes is None) != (self.memory.rss_source is None):
            raise EdgeqError("report: memory.rss_bytes and memory.rss_source go together")

    # -- JSON ----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self, indent: int | None = 2) -> str:
        """Standard JSON (no NaN/Infinity: a figure that is undefined is null)."""
        self.validate()
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        if not isinstance(data, dict):
            raise EdgeqError("report: top level must be a JSON object")
        version = data.get("schema_version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise EdgeqError("report: schema_version missing or not an integer")
        if version > SCHEMA_VERSION:
            raise EdgeqError(f"report: schema_version {version} is newer than this edgeq reads ({SCHEMA_VERSION})")
        return _build(cls, data, "report")

    @classmethod
    def from_json(cls, text: str) -> Self:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise EdgeqError(f"report: not valid JSON ({e})") from None
        return cls.from_dict(data)


def build(cls: type[T], data: Any) -> T:
    """A part of the report from plain dicts, e.g. `build(LayerTable, profile.layer_stats(...))`, checked
    as strictly as a JSON file is."""
    return _build(cls, data, cls.__name__)


def _build(cls: type, data: Any, path: str) -> Any:
    """A dataclass from parsed JSON, checked field by field against its type hints."""
    if not isinstance(data, dict):
        raise EdgeqError(f"{path}: expected an object")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise EdgeqError(f"{path}.{unknown[0]}: unknown key")
    kwargs = {}
    for name, f in fields.items():
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise EdgeqError(f"{path}.{name}: missing")
            continue
        kwargs[name] = _value(hints[name], data[name], f"{path}.{name}")
    return cls(**kwargs)


def _value(tp: Any, value: Any, path: str) -> Any:
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _value(inner, value, path)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, path)
    if origin is list:
        if not isinstance(value, list):
            raise EdgeqError(f"{path}: expected a list")
        return [_value(args[0], v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise EdgeqError(f"{path}: expected an object")
        return {k: _value(args[1], v, f"{path}.{k}") for k, v in value.items()}
    if tp is Any:
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, tp) or (tp is not bool and isinstance(value, bool)):
        raise EdgeqError(f"{path}: expected {tp.__name__}, got {type(value).__name__}")
    if tp is float and not math.isfinite(value):
        raise EdgeqError(f"{path}: not a finite number")
    return value
