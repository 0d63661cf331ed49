"""ONNX graph rewrites that let ``onnx2torch`` convert the PP-OCR models.

Each rewrite takes a ``ModelProto`` and returns a rewritten copy that ONNX Runtime runs to
bit-identical outputs (``tests/test_torch_backend.py`` checks it); only the spelling of the
graph changes, never what it computes:

- ``explicit_same_pads``: ``auto_pad=SAME_UPPER/SAME_LOWER`` (PP-OCRv6) as explicit ``pads``;
- ``hoist_constants``: weights stored as ``Constant`` nodes (PP-OCRv4, the v2.0 classifier)
  moved into the graph's initializers, where onnx2torch looks for Conv weights;
- ``annotate_batchnorm_rank``: a rank annotation for BatchNormalization inputs that shape
  inference leaves without one (onnx2torch picks ``BatchNorm1d/2d/3d`` by rank).

Runs wherever a torch backend is built (a worker process), once per model: the converted
module is cached on disk.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ocrmill.errors import ModelError

# Ops whose ``auto_pad``/``pads`` attributes mean "pad the input's spatial dims".
_PADDED_OPS = ("Conv", "MaxPool", "AveragePool", "LpPool")
# Ops that keep their first input's rank: followed upstream to find a BatchNorm input's rank.
_RANK_KEEPING_OPS = frozenset(
    {
        "Relu",
        "LeakyRelu",
        "PRelu",
        "Clip",
        "Sigmoid",
        "HardSigmoid",
        "HardSwish",
        "Tanh",
        "Elu",
        "Selu",
        "Identity",
        "Dropout",
        "Cast",
        "Neg",
        "Abs",
        "Sqrt",
        "Exp",
        "Erf",
        "BatchNormalization",
        "InstanceNormalization",
        "MaxPool",
        "AveragePool",
        "LpPool",
        "GlobalAveragePool",
        "GlobalMaxPool",
        "Resize",
        "Upsample",
    }
)


def _copy(model: Any) -> Any:
    import onnx

    out = onnx.ModelProto()
    out.CopyFrom(model)
    return out


def _node_label(node: Any) -> str:
    return f"{node.op_type} node {node.name or node.output[0]!r}"


def _known_shapes(model: Any) -> dict[str, list[int | None]]:
    """Value name -> dims (None where unknown) for every value shape inference can rank."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # onnx raises InferenceError/ValidationError: use what the file has
        inferred = model
    shapes: dict[str, list[int | None]] = {}
    graph = inferred.graph
    for info in [*graph.input, *graph.value_info, *graph.output]:
        tensor_type = info.type.tensor_type
        if not tensor_type.HasField("shape"):
            continue
        shapes[info.name] = [
            d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim
        ]
    for init in graph.initializer:
        shapes[init.name] = list(init.dims)
    return shapes


def explicit_same_pads(model: Any) -> Any:
    """``auto_pad=SAME_UPPER/SAME_LOWER`` on Conv and pooling nodes as explicit ``pads``.

    ONNX's rule: ``out = ceil(in / stride)`` and ``total = max(0, (out - 1) * stride +
    (kernel - 1) * dilation + 1 - in)``, the odd pixel going to the end (UPPER) or the start
    (LOWER). With stride 1 that is ``(kernel - 1) * dilation`` whatever the input size, so
    dynamic spatial dims are fine; with a larger stride the input's spatial size must be
    static (from shape inference), else ``ModelError``.
    """
    out = _copy(model)
    initializers = {init.name: init for init in out.graph.initializer}
    shapes: dict[str, list[int | None]] | None = None
    for node in out.graph.node:
        attrs = {a.name: a for a in node.attribute}
        auto_pad = attrs["auto_pad"].s.decode() if "auto_pad" in attrs else "NOTSET"
        if auto_pad not in ("SAME_UPPER", "SAME_LOWER"):
            continue
        if node.op_type not in _PADDED_OPS:
            raise ModelError(f"{_node_label(node)}: auto_pad={auto_pad} cannot be made explicit")
        if "kernel_shape" in attrs:
            kernel = list(attrs["kernel_shape"].ints)
        elif node.op_type == "Conv" and node.input[1] in initializers:
            kernel = list(initializers[node.input[1]].dims[2:])
        else:
            raise ModelError(f"{_node_label(node)}: auto_pad={auto_pad} with no known kernel size")
        rank = len(kernel)
        strides = list(attrs["strides"].ints) if "strides" in attrs else [1] * rank
        dilations = list(attrs["dilations"].ints) if "dilations" in attrs else [1] * rank
        ceil_mode = attrs["ceil_mode"].i if "ceil_mode" in attrs else 0
        if ceil_mode and any(s != 1 for s in strides):
            raise ModelError(
                f"{_node_label(node)}: auto_pad={auto_pad} with ceil_mode=1 and strides "
                f"{strides} is not supported"
            )
        begins, ends = [], []
        for axis, (k, s, d) in enumerate(zip(kernel, strides, dilations)):
            if s == 1:
                total = (k - 1) * d
            else:
                if shapes is None:
                    shapes = _known_shapes(out)
                dims = shapes.get(node.input[0])
                size = dims[2 + axis] if dims is not None and len(dims) == 2 + rank else None
                if not size:
                    raise ModelError(
                        f"{_node_label(node)}: auto_pad={auto_pad} with stride {s} needs a "
                        f"static input size, but spatial axis {axis} is dynamic"
                    )
                total = max(0, (math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size)
            small, large = total // 2, total - total // 2
            begins.append(small if auto_pad == "SAME_UPPER" else large)
            ends.append(large if auto_pad == "SAME_UPPER" else small)
        kept = [a for a in node.attribute if a.name not in ("auto_pad", "pads")]
        del node.attribute[:]
        node.attribute.extend(kept)
        import onnx

        node.attribute.append(onnx.helper.make_attribute("pads", begins + ends))
    return out


def _constant_tensor(node: Any) -> Any | None:
    """The tensor a ``Constant`` node produces, named after its output (None: not a tensor
    onnx2torch or this rewrite should touch, e.g. strings or sparse values)."""
    import onnx

    if len(node.attribute) != 1:
        return None
    attr = node.attribute[0]
    name = node.output[0]
    if attr.name == "value":
        tensor = onnx.TensorProto()
        tensor.CopyFrom(attr.t)
        tensor.name = name
        if tensor.data_type == onnx.TensorProto.STRING:
            return None
        return tensor
    if attr.name == "value_float":
        return onnx.helper.make_tensor(name, onnx.TensorProto.FLOAT, [], [attr.f])
    if attr.name == "value_floats":
        return onnx.helper.make_tensor(
            name, onnx.TensorProto.FLOAT, [len(attr.floats)], list(attr.floats)
        )
    if attr.name == "value_int":
        return onnx.helper.make_tensor(name, onnx.TensorProto.INT64, [], [attr.i])
    if attr.name == "value_ints":
        return onnx.helper.make_tensor(
            name, onnx.TensorProto.INT64, [len(attr.ints)], list(attr.ints)
        )
    return None


def hoist_constants(model: Any) -> Any:
    """Top-level ``Constant`` nodes as initializers of the same name (ONNX Runtime folds
    Constant nodes into initializers when it loads a graph, so it runs the same)."""
    import onnx

    out = _copy(model)
    graph = out.graph
    taken = {init.name for init in graph.initializer}
    graph_outputs = {o.name for o in graph.output}
    kept_nodes = []
    hoisted = []
    for node in graph.node:
        tensor = None
        if (
            node.op_type == "Constant"
            and node.domain in ("", "ai.onnx")
            and node.output[0] not in graph_outputs
            and node.output[0] not in taken
        ):
            tensor = _constant_tensor(node)
        if tensor is None:
            kept_nodes.append(node)
        else:
            hoisted.append(tensor)
    if not hoisted:
        return out
    del graph.node[:]
    graph.node.extend(kept_nodes)
    graph.initializer.extend(hoisted)
    if out.ir_version < 4:  # before IR 4 every initializer had to be a graph input too
        graph.input.extend(
            onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in hoisted
        )
    return out


def _value_rank(
    name: str, shapes: dict[str, list[int | None]], producers: dict[str, Any]
) -> int | None:
    """Rank of ``name``: known from shape inference, or read off the op that makes it
    (a Conv's weight rank, or an op that keeps its input's rank, followed upstream)."""
    seen: set[str] = set()
    while name not in seen:
        seen.add(name)
        if name in shapes:
            return len(shapes[name])
        node = producers.get(name)
        if node is None:
            return None
        if node.op_type in ("Conv", "ConvTranspose") and len(node.input) > 1:
            weight = shapes.get(node.input[1])
            return len(weight) if weight is not None else None
        if node.op_type not in _RANK_KEEPING_OPS:
            return None
        name = node.input[0]
    return None


def annotate_batchnorm_rank(model: Any) -> Any:
    """A ``value_info`` with the right rank (dims unknown but the channel count) for each
    BatchNormalization input that shape inference leaves unranked."""
    import onnx

    out = _copy(model)
    graph = out.graph
    shapes = _known_shapes(out)
    producers = {o: node for node in graph.node for o in node.output}
    initializers = {init.name: init for init in graph.initializer}
    annotated: set[str] = set()
    for node in graph.node:
        if node.op_type != "BatchNormalization":
            continue
        name = node.input[0]
        if name in shapes or name in annotated:
            continue
        rank = _value_rank(name, shapes, producers)
        if rank is None:
            raise ModelError(
                f"{_node_label(node)}: the rank of its input {name!r} is unknown "
                "(shape inference and the producing ops do not tell)"
            )
        scale = initializers.get(node.input[1])
        elem_type = scale.data_type if scale is not None else onnx.TensorProto.FLOAT
        channels = scale.dims[0] if scale is not None and len(scale.dims) == 1 else None
        dims: list[int | None] = [None] * rank
        if rank >= 2:
            dims[1] = channels
        graph.value_info.append(onnx.helper.make_tensor_value_info(name, elem_type, dims))
        annotated.add(name)
    return out


REWRITES: tuple[Callable[[Any], Any], ...] = (
    hoist_constants,
    explicit_same_pads,
    annotate_batchnorm_rank,
)


def prepare_for_onnx2torch(model: Any) -> Any:
    """All rewrites, in an order where each can use the previous one's work (hoisted
    Conv weights give kernel sizes and ranks)."""
    for rewrite in REWRITES:
        model = rewrite(model)
    return model
