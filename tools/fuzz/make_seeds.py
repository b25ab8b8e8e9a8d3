"""Writes the fuzzers' seed corpora: valid, small inputs that reach deep into each parser.

    python tools/fuzz/make_seeds.py OUT_DIR [--no-digits]

OUT_DIR/blob    .edgeq blobs: the all-ops graph (tests/runtime_graphs.py: every op) in every weight
                format and scale kind (T2 and T158 row + block, B1 row, I8 row, Q4 block 32/64/128
                with and without zero points; T2 and Q4 once more in the rows4 layout), one with a
                reserved signature section, and packed
                digits models with bundled test data (MLP T2, CNN Q4, BNN B1)
OUT_DIR/gguf    GGUF files through gguf-py's writer: TQ2_0, TQ1_0, Q4_0, Q8_0, F16, F32 tensors
OUT_DIR/tflite  int8 .tflite models from tests/data/make_tflite.py (conv, pooling, add, int4, ...)

A mutation of a valid input keeps most of its structure, so the fuzzers start from inputs every
check accepts instead of having to discover the magic, the section table and the records.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "examples" / "digits")]

from edgeq.blob import write_blob
from edgeq.blob.writer import atomic_write, serialize
from tests.runtime_graphs import CONFIGS, all_ops_graph, with_rows4

DIGITS = [("mlp_t2_qat", "t2", {}), ("cnn_q4_qat", "q4", {}), ("bnn_b1_qat", "b1", {})]
KIND_NAMES = {1: "row", 2: "block"}


def blob_seeds(out: Path, digits: bool) -> list[Path]:
    """The all-ops graph per format/scale kind, a signed-layout blob, and packed digits models."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt, kind, block, zeros in CONFIGS:
        name = f"allops_{fmt}_{KIND_NAMES.get(kind, kind)}{block or ''}{'_zp' if zeros else ''}.edgeq"
        write_blob(all_ops_graph(0, fmt, kind, block, zeros), out / name)
        paths.append(out / name)
        if fmt in ("t2", "q4"):
            tiled = out / name.replace(".edgeq", "_rows4.edgeq")
            write_blob(with_rows4(all_ops_graph(0, fmt, kind, block, zeros)), tiled)
            paths.append(tiled)
    signed = out / "allops_t2_row_signature.edgeq"
    atomic_write(signed, serialize(all_ops_graph(1, "t2", CONFIGS[0][1]), signature_size=96))
    paths.append(signed)
    if digits:
        from edgeq.cli_pack import to_nhwc
        from edgeq.importers.torch_export import from_pt2
        from edgeq.packer import Recipe, pack

        models = ROOT / "examples" / "digits" / "models"
        for stem, fmt, recipe in DIGITS:
            data = np.load(models / f"{stem.split('_')[0]}_data.npz")
            fg = from_pt2(models / f"{stem}.pt2")
            x = to_nhwc(data["x"], fg.input_shape)
            tests = to_nhwc(data["x_test"], fg.input_shape)[:2]
            graph = pack(fg, x, Recipe(fmt, **recipe), tests=tests, labels=data["y_test"][:2])
            write_blob(graph, out / f"digits_{stem}.edgeq")
            paths.append(out / f"digits_{stem}.edgeq")
    return paths


def gguf_seeds(out: Path) -> list[Path]:
    """Small GGUFs with every tensor type the importer takes (and one it refuses)."""
    import gguf
    from gguf import GGMLQuantizationType as Q

    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(5)
    files = {
        "ternary.gguf": [("blk.0.ffn_up.weight", Q.TQ2_0, (3, 256)), ("blk.0.ffn_down.weight", Q.TQ1_0, (2, 256))],
        "mixed.gguf": [("blk.0.attn_q.weight", Q.Q4_0, (3, 64)), ("blk.0.attn_v.weight", Q.Q8_0, (2, 32)),
                       ("token_embd.weight", Q.F16, (3, 7)), ("output_norm.weight", Q.F32, (5,))],
        "unsupported.gguf": [("blk.0.ffn_up.weight", Q.Q5_0, (2, 32))],
    }
    paths = []
    for name, tensors in files.items():
        path = out / name
        w = gguf.GGUFWriter(str(path), "llama")
        w.add_name(name.split(".")[0])
        w.add_array("tokenizer.ggml.tokens", ["<s>", "</s>", "a"])
        w.add_uint32("llama.context_length", 64)
        for tname, qtype, shape in tensors:
            x = rng.standard_normal(shape).astype(np.float32)
            raw = x if qtype == Q.F32 else x.astype(np.float16) if qtype == Q.F16 else gguf.quants.quantize(x, qtype)
            w.add_tensor(tname, raw, raw_dtype=qtype)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        paths.append(path)
    return paths


def tflite_seeds(out: Path) -> list[Path]:
    from tests.data.make_tflite import write_all

    out.mkdir(parents=True, exist_ok=True)
    return list(write_all(out).values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--no-digits", action="store_true", help="skip the packed digits models (needs torch)")
    args = ap.parse_args()
    n = {
        "blob": len(blob_seeds(args.out / "blob", not args.no_digits)),
        "gguf": len(gguf_seeds(args.out / "gguf")),
        "tflite": len(tflite_seeds(args.out / "tflite")),
    }
    print(" ".join(f"{k}: {v}" for k, v in n.items()), "seeds in", args.out)


if __name__ == "__main__":
    main()
