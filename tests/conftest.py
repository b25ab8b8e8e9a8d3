"""Shared fixtures: small packed graphs and blobs built through the real packer."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples" / "digits"))
DIGITS_MODELS = ROOT / "examples" / "digits" / "models"


def digits_blob_graph(stem: str, fmt: str, n_tests: int = 16, **recipe):
    """Packs a committed digits model; returns (graph, float graph, x_test, y_test)."""
    from edgeq.cli_pack import to_nhwc
    from edgeq.importers.torch_export import from_pt2
    from edgeq.packer import Recipe, pack

    kind = stem.split("_")[0]
    data = np.load(DIGITS_MODELS / f"{kind}_data.npz")
    fg = from_pt2(DIGITS_MODELS / f"{stem}.pt2")
    x = to_nhwc(data["x"], fg.input_shape)
    x_test = to_nhwc(data["x_test"], fg.input_shape)
    graph = pack(fg, x, Recipe(fmt, **recipe), tests=x_test[:n_tests], labels=data["y_test"][:n_tests])
    return graph, fg, x_test, data["y_test"]


@pytest.fixture(scope="session")
def mlp_t2_blob(tmp_path_factory) -> Path:
    from edgeq.blob import write_blob

    graph, *_ = digits_blob_graph("mlp_t2_qat", "t2")
    path = tmp_path_factory.mktemp("blobs") / "mlp_t2.edgeq"
    write_blob(graph, path)
    return path
