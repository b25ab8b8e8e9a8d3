"""Deploy reports: the data model and JSON schema (model), accuracy metrics, console tables, plots.

Console and plot are imported from their modules (edgeq.report.console, edgeq.report.plot) so that
reading or writing JSON pulls in neither rich's tables nor matplotlib.
"""

from edgeq.report.accuracy import accuracy_metrics
from edgeq.report.model import (
    SCHEMA_VERSION,
    Accuracy,
    BlobInfo,
    BuildInfo,
    DeviceInfo,
    Energy,
    InstructionCount,
    Latency,
    LatencyStats,
    LayerRow,
    LayerTable,
    LoadTime,
    Memory,
    ModelledLatency,
    Prediction,
    Report,
    TargetInfo,
    Verdict,
    build,
)

__all__ = [
    "SCHEMA_VERSION",
    "Accuracy",
    "BlobInfo",
    "BuildInfo",
    "DeviceInfo",
    "Energy",
    "InstructionCount",
    "Latency",
    "LatencyStats",
    "LayerRow",
    "LayerTable",
    "LoadTime",
    "Memory",
    "ModelledLatency",
    "Prediction",
    "Report",
    "TargetInfo",
    "Verdict",
    "accuracy_metrics",
    "build",
]
