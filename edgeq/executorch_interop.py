"""ExecuTorch: write a torch.export model as a .pte (fp32, or 8da4w through the XNNPACK quantizer), and
run .pte files with `executorch.runtime` for `edgeq compare`.

8da4w here is XNNPACK's "8-bit dynamic activations, 4-bit weights": int8 per-tensor activations
chosen at run time, int4 weights per output channel (symmetric, -8..7), applied by the XNNPACK
quantizer to the layers it quantizes dynamically (linear layers; convolutions stay fp32), then
lowered with the XNNPACK partitioner. Requires the `executorch` extra (executorch 1.5.1, torchao).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeq.blob.writer import atomic_write
from edgeq.errors import EdgeqError

QUANTS = ("fp32", "8da4w")


def require_executorch():
    try:
        import executorch.exir  # noqa: F401
        from executorch.runtime import Runtime  # noqa: F401
    except ImportError as e:
        raise EdgeqError(f"ExecuTorch is not installed ({e}): pip install 'edgeq[executorch]'") from None


def _program(model: Path):
    from edgeq.importers.torch_export import load_pt2

    if model.suffix != ".pt2":
        raise EdgeqError(f"{model}: export-pte takes a torch.export program (.pt2)")
    if not model.exists():
        raise EdgeqError(f"{model}: no such model file")
    ep = load_pt2(model)
    return ep.module(), ep.example_inputs[0]


def export_pte(model: Path, output: Path, quant: str = "fp32") -> int:
    """Lowers MODEL to XNNPACK and writes the .pte atomically; returns its size."""
    import torch

    require_executorch()
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    if quant not in QUANTS:
        raise EdgeqError(f"--quant {quant}: choose from {', '.join(QUANTS)}")
    module, example = _program(model)
    if quant == "8da4w":
        from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
            XNNPACKQuantizer,
            get_symmetric_quantization_config,
        )
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

        config = get_symmetric_quantization_config(is_per_channel=True, is_dynamic=True, weight_qmin=-8,
                                                   weight_qmax=7)
        prepared = prepare_pt2e(torch.export.export(module, example).module(), XNNPACKQuantizer().set_global(config))
        prepared(*example)  # weight observers record the weights' ranges (activations are dynamic)
        module = convert_pt2e(prepared)
    program = to_edge_transform_and_lower(torch.export.export(module, example),
                                          partitioner=[XnnpackPartitioner()]).to_executorch()
    atomic_write(output, program.buffer)
    return len(program.buffer)


class PteRunner:
    """A .pte's forward method, one sample at a time (exported with the example's batch of 1)."""

    def __init__(self, path: Path, threads: int = 1):
        require_executorch()
        from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool
        from executorch.runtime import Runtime

        _unsafe_reset_threadpool(threads)  # XNNPACK's pool; same thread count as the other runtimes
        self.method = Runtime.get().load_program(str(path)).load_method("forward")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        import torch

        return self.method.execute([torch.from_numpy(np.ascontiguousarray(x, np.float32))])[0].numpy()
