"""A PP-OCR recognizer whose classifier head scores only some of its classes.

The head of a PP-OCR recognizer is a linear layer (``MatMul`` + ``Add``, or ``Gemm``)
followed by a ``Softmax`` over the classes. :func:`restrict_classes` keeps the columns of
the weight and bias for the chosen classes, so the layer computes fewer logits and the
softmax normalizes over those alone: a class's probability is then relative to the kept
classes (argmax among them is unchanged; confidences rise where dropped classes took
probability). The rest of the graph is untouched. With ``features=True`` the restricted
model also outputs the head's input (:data:`FEATURES_OUTPUT`), so the whole head
(:func:`head_weights`) can score chosen lines afterwards without running the model again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ocrmill.errors import ModelError

FEATURES_OUTPUT = "ocrmill_head_input"
"""Name of the second output of a model restricted with ``features=True``."""

# Nodes that may sit between the linear layer and the softmax without changing the classes.
_PASS_THROUGH = ("Identity", "Cast")


@dataclass(frozen=True)
class _Head:
    """Where a recognizer's linear head keeps its input, weight (``in x classes`` unless
    ``transposed``) and bias."""

    features: str
    weight: Any
    bias: Any | None
    transposed: bool


def _producers(graph: Any) -> dict[str, Any]:
    return {out: node for node in graph.node for out in node.output}


def _initializer(graph: Any, name: str) -> Any | None:
    return next((init for init in graph.initializer if init.name == name), None)


def _upstream(producers: dict[str, Any], name: str) -> Any | None:
    node = producers.get(name)
    while node is not None and node.op_type in _PASS_THROUGH:
        node = producers.get(node.input[0])
    return node


def _replace(init: Any, array: np.ndarray) -> None:
    from onnx import numpy_helper

    init.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(array), init.name))


def _find_head(graph: Any) -> _Head:
    """The linear layer feeding the recognizer's softmax. Raises :class:`ModelError` when
    the graph does not end in a linear layer and a softmax over the last axis, with
    weights stored in the file."""
    if len(graph.output) != 1:
        raise ModelError(f"recognizer has {len(graph.output)} outputs; expected one")
    producers = _producers(graph)
    softmax = _upstream(producers, graph.output[0].name)
    if softmax is None or softmax.op_type != "Softmax":
        raise ModelError("recognizer output is not a softmax: cannot restrict its classes")
    axis = next((a.i for a in softmax.attribute if a.name == "axis"), -1)
    if axis not in (-1, 2):
        raise ModelError(f"recognizer softmax runs over axis {axis}, not the classes")
    linear = _upstream(producers, softmax.input[0])
    if linear is not None and linear.op_type == "Add":
        bias = next(
            (init for init in (_initializer(graph, i) for i in linear.input) if init is not None),
            None,
        )
        matmul = next(
            (
                n
                for n in (_upstream(producers, i) for i in linear.input)
                if n is not None and n.op_type == "MatMul"
            ),
            None,
        )
        weight = _initializer(graph, matmul.input[1]) if matmul is not None else None
        if matmul is None or bias is None or weight is None:
            raise ModelError("recognizer head: no MatMul weight and Add bias in the file")
        return _Head(matmul.input[0], weight, bias, transposed=False)
    if linear is not None and linear.op_type == "Gemm":
        weight = _initializer(graph, linear.input[1])
        bias = _initializer(graph, linear.input[2]) if len(linear.input) > 2 else None
        if weight is None:
            raise ModelError("recognizer head: no Gemm weight in the file")
        trans_b = next((a.i for a in linear.attribute if a.name == "transB"), 0)
        return _Head(linear.input[0], weight, bias, transposed=bool(trans_b))
    found = linear.op_type if linear is not None else "a graph input"
    raise ModelError(f"recognizer head ends in {found}, not a linear layer")


def _arrays(head: _Head) -> tuple[np.ndarray, np.ndarray | None]:
    from onnx import numpy_helper

    w = numpy_helper.to_array(head.weight)
    b = numpy_helper.to_array(head.bias) if head.bias is not None else None
    return w, b


def head_weights(model: Any) -> tuple[np.ndarray, np.ndarray]:
    """The recognizer's whole head as float32 ``weight`` (features x classes) and ``bias``
    (classes; zeros when the layer has none): ``softmax(features @ weight + bias)`` is the
    model's output."""
    from ocrmill.backends.onnx_rewrite import hoist_constants

    head = _find_head(hoist_constants(model).graph)
    w, b = _arrays(head)
    if w.ndim != 2:
        raise ModelError(f"recognizer head weight of shape {w.shape}")
    w = w.T if head.transposed else w
    bias = np.zeros(w.shape[1], np.float32) if b is None else b
    if bias.shape != (w.shape[1],):
        raise ModelError(f"recognizer head weights of shapes {w.shape}, {bias.shape}")
    return np.ascontiguousarray(w, dtype=np.float32), np.ascontiguousarray(bias, np.float32)


def whole_head_model(model: Any, metadata: dict[str, str]) -> Any:
    """A small model of the recognizer's whole head alone: ``features`` (BxTxF, the head's
    input) in; ``idx`` (BxT, int64, the best class) and ``best`` (BxT, its softmax
    probability) out. ``metadata`` is stored in the file."""
    from onnx import TensorProto, helper, numpy_helper

    weight, bias = head_weights(model)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["features", "weight"], ["product"]),
            helper.make_node("Add", ["product", "bias"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probs"], axis=-1),
            helper.make_node("ArgMax", ["probs"], ["idx"], axis=-1, keepdims=0),
            helper.make_node("ReduceMax", ["probs"], ["best"], axes=[-1], keepdims=0),
        ],
        "whole_head",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, None, None])],
        [
            helper.make_tensor_value_info("idx", TensorProto.INT64, [None, None]),
            helper.make_tensor_value_info("best", TensorProto.FLOAT, [None, None]),
        ],
        initializer=[
            numpy_helper.from_array(weight, "weight"),
            numpy_helper.from_array(bias, "bias"),
        ],
    )
    out = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    out.ir_version = 7  # readable by every supported ONNX Runtime
    for key, value in metadata.items():
        out.metadata_props.add(key=key, value=value)
    return out


def restrict_classes(model: Any, keep: Sequence[int], *, features: bool = False) -> Any:
    """A copy of the recognizer ``model`` (an ``onnx.ModelProto``) that outputs only the
    classes ``keep`` (indices into its class axis, in order), and with ``features`` also
    the head's input as a second output named :data:`FEATURES_OUTPUT`.

    Raises :class:`ModelError` when the graph does not end in a linear layer and a softmax
    over the last axis, with weights stored in the file.
    """
    from onnx import helper

    from ocrmill.backends.onnx_rewrite import hoist_constants

    out = hoist_constants(model)  # weights stored as Constant nodes become initializers
    graph = out.graph
    head = _find_head(graph)
    index = np.asarray(keep, dtype=np.int64)
    w, b = _arrays(head)
    classes = w.shape[0] if head.transposed else w.shape[-1]
    if w.ndim != 2 or (b is not None and b.shape != (classes,)):
        raise ModelError(
            f"recognizer head weights of shapes {w.shape}, {None if b is None else b.shape}"
        )
    if index.max(initial=0) >= classes:
        raise ModelError(f"class {index.max()} is beyond the head's {classes} classes")
    _replace(head.weight, w[index] if head.transposed else w[:, index])
    if b is not None:
        _replace(head.bias, b[index])
    # Intermediate shapes recorded for the old class count would contradict the new one.
    del graph.value_info[:]
    dims = graph.output[0].type.tensor_type.shape.dim
    if dims:
        dims[len(dims) - 1].Clear()
        dims[len(dims) - 1].dim_value = len(index)
    if features:
        graph.node.append(helper.make_node("Identity", [head.features], [FEATURES_OUTPUT]))
        graph.output.append(helper.make_tensor_value_info(FEATURES_OUTPUT, 1, None))
    return out
