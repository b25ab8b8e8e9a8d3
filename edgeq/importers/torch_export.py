"""torch.export programs (`.pt2` files or an nn.Module + example input) -> FloatGraph.

Activations become NHWC; batch norm is folded into the conv/linear before it; a flatten of a
4-D value permutes the next linear's columns so NHWC order gives the same result as NCHW.
"""

from __future__ import annotations

import operator
from pathlib import Path

import numpy as np

from edgeq.errors import EdgeqError
from edgeq.importers.float_graph import FloatGraph, FNode

SUPPORTED = {
    "aten.linear.default": "linear",
    "aten.conv2d.default": "conv2d",
    "aten.batch_norm.default": "batch_norm",
    "aten._native_batch_norm_legit_no_training.default": "batch_norm",
    "aten.relu.default": "relu",
    "aten.relu_.default": "relu",
    "aten.add.Tensor": "add",
    "aten.max_pool2d.default": "maxpool2d",
    "aten.avg_pool2d.default": "avgpool2d",
    "aten.adaptive_avg_pool2d.default": "global_avgpool",
    "aten.mean.dim": "global_avgpool",
    "aten.flatten.using_ints": "flatten",
    "aten.view.default": "flatten",
    "aten.reshape.default": "flatten",
    "aten.softmax.int": "softmax",
    "aten._softmax.default": "softmax",
    "aten.sign.default": "sign",
    "aten.dropout.default": "identity",
    "aten.clone.default": "identity",
    "_operator.getitem": "getitem",
    # torchao-quantized weights saved in the program: qdata/scale/zero_point read from the weight, dequantized
    "export.access_subclass_inner_tensor.default": "subclass_inner",
    "torchao.dequantize_affine.default": "dequantize_affine",
    # torchao's dynamic activation fake-quant (8da4w): dropped, edgeq quantizes activations its own way
    "torchao.choose_qparams_affine.default": "activation_qparams",
    "torchao.quantize_affine.default": "quantize_affine",
}


def load_pt2(path: str | Path):
    import torch

    path = Path(path)
    if not path.exists():
        raise EdgeqError(f"{path}: no such model file")
    try:
        return torch.export.load(str(path))
    except Exception as e:  # noqa: BLE001 -- torch raises many unrelated types for a bad archive
        raise EdgeqError(f"{path}: not a torch.export .pt2 program ({type(e).__name__}: {str(e)[:120]})") from None


def export_module(module, example_input):
    import torch

    return torch.export.export(module.eval(), (example_input,))


def _pair(v) -> tuple[int, int]:
    if isinstance(v, (list, tuple)):
        return (int(v[0]), int(v[-1]))
    return (int(v), int(v))


def _pads(p) -> tuple[int, int, int, int]:
    ph, pw = _pair(p if p else 0)
    return (ph, pw, ph, pw)


def _shape(node) -> tuple[int, ...]:
    val = node.meta.get("val")
    return tuple(int(s) for s in val.shape) if val is not None and hasattr(val, "shape") else ()


class _Importer:
    def __init__(self, ep):
        self.ep = ep
        sig = ep.graph_signature
        state = ep.state_dict
        self.params = {}
        self.fqn = {**sig.inputs_to_parameters, **sig.inputs_to_buffers}  # placeholder -> state-dict name
        self.quantized: dict[str, object] = {}  # placeholder -> torchao weight (kept for its codes and scales)
        self.inner: dict[str, str] = {}  # access_subclass_inner_tensor node -> the weight placeholder
        self.dequantized: dict[str, str] = {}  # dequantize_affine node -> the weight placeholder
        self.act_qparams: set[str] = set()  # run-time activation scale/zero-point values (ignored)
        for ph, name in self.fqn.items():
            value = state[name] if name in state else ep.constants[name]
            if all(hasattr(value, k) for k in ("qdata", "scale", "zero_point", "block_size")):
                self.quantized[ph] = value
                value = value.dequantize()
            self.params[ph] = value.detach().float().numpy()
        self.nodes: list[FNode] = []
        self.alias: dict[str, str] = {}
        self.rank: dict[str, int] = {}
        self.nchw: dict[str, tuple[int, int, int]] = {}  # flattened 4-D value -> (C, H, W)
        self.input_shape: tuple[int, ...] = ()

    def name(self, arg) -> str:
        return self.alias.get(arg.name, arg.name)

    def param(self, arg) -> np.ndarray | None:
        if arg is None:
            return None
        if arg.name not in self.params:
            raise EdgeqError(f"node {arg.name}: expected a weight/parameter input, got a computed value")
        return self.params[arg.name]

    def emit(self, kind: str, node, inputs: list[str], params=None, attrs=None) -> None:
        self.nodes.append(FNode(kind, node.name, inputs, params or {}, attrs or {}))
        self.rank[node.name] = len(_shape(node))

    def run(self) -> FloatGraph:
        for node in self.ep.graph.nodes:
            if node.op == "placeholder":
                if node.name not in self.params:
                    if self.input_shape:
                        raise EdgeqError("models with more than one input are not supported yet")
                    shape = _shape(node)
                    self.input_shape = (1, shape[2], shape[3], shape[1]) if len(shape) == 4 else (1,) + shape[1:]
                    self.nodes.append(FNode("input", node.name, []))
                    self.rank[node.name] = len(shape)
                continue
            if node.op == "output":
                out = node.args[0]
                out = out[0] if isinstance(out, (list, tuple)) else out
                return FloatGraph(self.nodes, self.input_shape, self.name(out))
            self.call(node)
        raise EdgeqError("exported program has no output")

    def call(self, node) -> None:
        target = str(node.target) if node.target is not operator.getitem else "_operator.getitem"
        kind = SUPPORTED.get(target)
        if kind is None:
            raise EdgeqError(
                f"unsupported op {target} at node '{node.name}'; supported: "
                + ", ".join(sorted({k.split('.')[1] for k in SUPPORTED if k.startswith('aten')}))
            )
        a = node.args
        x = a[0]
        if kind == "activation_qparams" or (kind == "getitem" and x.name in self.act_qparams):
            self.act_qparams.add(node.name)
            return
        if kind == "quantize_affine" or (kind == "dequantize_affine" and x.name not in self.inner):
            if x.name in self.params or x.name in self.inner:
                raise EdgeqError(f"node '{node.name}': {node.target} of a weight that is not a torchao tensor")
            self.alias[node.name] = self.name(x)  # activation fake-quant: edgeq's static int8 replaces it
            self.rank[node.name] = self.rank.get(x.name, len(_shape(x)))
            return
        if kind in ("identity", "getitem"):
            if kind == "getitem" and a[1] != 0:
                raise EdgeqError(f"node '{node.name}': only the first output of {x.name} can be used")
            self.alias[node.name] = self.name(x)
            self.rank[node.name] = self.rank.get(x.name, 0)
            return
        if kind == "subclass_inner":
            if x.name not in self.quantized:
                raise EdgeqError(f"node '{node.name}': reads inside a weight that is not a torchao quantized tensor")
            self.inner[node.name] = x.name
            return
        if kind == "dequantize_affine":
            owners = {self.inner.get(getattr(v, "name", ""), "") for v in (a[0], a[2], a[3])}
            if len(owners) != 1 or "" in owners:
                raise EdgeqError(f"node '{node.name}': dequantize_affine of something other than one torchao weight")
            owner = owners.pop()
            self.params[node.name], self.dequantized[node.name] = self.params[owner], owner
            return
        src = self.name(x)
        if kind == "linear":
            w = self.param(a[1])
            b = self.param(a[2]) if len(a) > 2 else None
            owner = self.dequantized.get(a[1].name, a[1].name)
            attrs = {"weight_param": self.fqn.get(owner, "")}
            if src in self.nchw:  # where each stored column came from (pre-quantized weights follow it too)
                attrs["columns"] = self._unflatten_columns(src, np.arange(w.shape[1]).reshape(1, -1))[0]
            w = self._unflatten_columns(src, w)
            self.emit("linear", node, [src], {"weight": w, "bias": b if b is not None else np.zeros(w.shape[0], np.float32)},
                      attrs)
        elif kind == "conv2d":
            self._conv(node)
        elif kind == "batch_norm":
            self._fold_bn(node)
        elif kind == "relu":
            self.emit("relu", node, [src])
        elif kind == "add":
            if not hasattr(a[1], "name") or a[1].name in self.params:
                raise EdgeqError(f"node '{node.name}': add of a constant is not supported, only of two activations")
            self.emit("add", node, [src, self.name(a[1])])
        elif kind in ("maxpool2d", "avgpool2d"):
            k = _pair(a[1])
            stride = _pair(a[2]) if len(a) > 2 and a[2] else k
            pads = _pads(a[3] if len(a) > 3 else 0)
            ceil_at = 5 if kind == "maxpool2d" else 4
            if kind == "maxpool2d" and len(a) > 4 and _pair(a[4]) != (1, 1):
                raise EdgeqError(f"node '{node.name}': dilated pooling is not supported")
            if len(a) > ceil_at and a[ceil_at]:
                raise EdgeqError(f"node '{node.name}': ceil_mode pooling is not supported")
            if kind == "avgpool2d" and any(pads) and (len(a) <= 5 or a[5]):
                raise EdgeqError(f"node '{node.name}': padded avg_pool2d must use count_include_pad=False "
                                 "(edgeq divides by the valid taps, as TFLite does)")
            self.emit(kind, node, [src], attrs={"kernel": k, "stride": stride, "pads": pads})
        elif kind == "global_avgpool":
            shape = _shape(x)
            if kind == "global_avgpool" and target == "aten.adaptive_avg_pool2d.default" and _pair(a[1]) != (1, 1):
                raise EdgeqError(f"node '{node.name}': adaptive_avg_pool2d supports output size 1 only")
            if target == "aten.mean.dim" and sorted(int(d) % 4 for d in a[1]) != [2, 3]:
                raise EdgeqError(f"node '{node.name}': mean is supported over the spatial dims only")
            k = (shape[2], shape[3])
            self.emit("avgpool2d", node, [src], attrs={"kernel": k, "stride": k, "pads": (0, 0, 0, 0)})
            if len(_shape(node)) == 3:  # mean without keepdim
                self.rank[node.name] = 4
        elif kind == "flatten":
            in_shape, out_shape = _shape(x), _shape(node)
            if len(out_shape) != 2:
                raise EdgeqError(f"node '{node.name}': only flattening to [N, features] is supported, got {out_shape}")
            if len(in_shape) == 4:
                self.nchw[node.name] = in_shape[1:]
            elif src in self.nchw:
                self.nchw[node.name] = self.nchw[src]
            self.emit("flatten", node, [src])
        elif kind == "softmax":
            if int(a[1]) not in (-1, len(_shape(x)) - 1):
                raise EdgeqError(f"node '{node.name}': softmax over the last dim only")
            self.emit("softmax", node, [src])
        elif kind == "sign":
            if self.rank.get(x.name, len(_shape(x))) != 2:
                raise EdgeqError(f"node '{node.name}': binary (sign) activations are supported on [N, features] only")
            if src in self.nchw:
                self.nchw[node.name] = self.nchw[src]
            self.emit("sign", node, [src])
        if kind in ("relu",) and src in self.nchw:
            self.nchw[node.name] = self.nchw[src]

    def _unflatten_columns(self, src: str, w: np.ndarray) -> np.ndarray:
        """Reorders linear columns from NCHW-flatten order to NHWC-flatten order."""
        chw = self.nchw.get(src)
        if chw is None:
            return w
        c, h, wd = chw
        return w.reshape(w.shape[0], c, h, wd).transpose(0, 2, 3, 1).reshape(w.shape[0], -1)

    def _conv(self, node) -> None:
        a = node.args
        w = self.param(a[1])
        b = self.param(a[2]) if len(a) > 2 and a[2] is not None else np.zeros(w.shape[0], np.float32)
        stride = _pair(a[3]) if len(a) > 3 else (1, 1)
        padding = a[4] if len(a) > 4 else 0
        if isinstance(padding, str):
            raise EdgeqError(f"node '{node.name}': string padding '{padding}' is not supported, use integers")
        dilation = _pair(a[5]) if len(a) > 5 else (1, 1)
        groups = int(a[6]) if len(a) > 6 else 1
        if dilation != (1, 1):
            raise EdgeqError(f"node '{node.name}': dilated convolution is not supported")
        attrs = {"stride": stride, "pads": _pads(padding)}
        cin = _shape(a[0])[1]
        if groups == 1:
            self.emit("conv2d", node, [self.name(a[0])], {"weight": w.transpose(0, 2, 3, 1).copy(), "bias": b}, attrs)
        elif groups == cin == w.shape[0]:
            self.emit("dwconv2d", node, [self.name(a[0])], {"weight": w[:, 0].copy(), "bias": b}, attrs)
        else:
            raise EdgeqError(f"node '{node.name}': grouped convolution (groups={groups}) is not supported; "
                             "groups=1 and depthwise are")

    def _fold_bn(self, node) -> None:
        a = node.args
        prev = next((n for n in self.nodes if n.name == self.name(a[0])), None)
        if prev is None or prev.kind not in ("conv2d", "dwconv2d", "linear"):
            raise EdgeqError(f"node '{node.name}': batch norm must follow a conv or linear layer to be folded")
        gamma, beta, mean, var = (self.param(v) for v in a[1:5])
        eps = float(a[7]) if "aten.batch_norm" in str(node.target) else float(a[6])
        scale = gamma / np.sqrt(var + eps)
        w = prev.params["weight"]
        prev.params["weight"] = (w * scale.reshape((-1,) + (1,) * (w.ndim - 1))).astype(np.float32)
        prev.params["bias"] = ((prev.params["bias"] - mean) * scale + beta).astype(np.float32)
        self.alias[node.name] = prev.name
        self.rank[node.name] = self.rank[prev.name]


def from_exported(ep, source: str = "") -> FloatGraph:
    importer = _Importer(ep)
    graph = importer.run()
    graph.source = source
    if importer.quantized:  # torchao weights keep their own codes and scales
        from edgeq.importers.torch_quantized import attach_prequantized

        attach_prequantized(graph, {importer.fqn[ph]: w for ph, w in importer.quantized.items()})
    return graph


def from_module(module, example_input) -> FloatGraph:
    """An nn.Module + example input (NCHW or [N, K] torch tensor) -> FloatGraph."""
    return from_exported(export_module(module, example_input), source=type(module).__name__)


def from_pt2(path: str | Path) -> FloatGraph:
    return from_exported(load_pt2(path), source=Path(path).name)
