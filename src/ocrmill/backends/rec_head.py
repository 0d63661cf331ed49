"""A PP-OCR recognizer whose classifier head scores only some of its classes.

The head of a PP-OCR recognizer is a linear layer (``MatMul`` + ``Add``, or ``Gemm``)
followed by a ``Softmax`` over the classes. :func:`restrict_classes` keeps the columns of
the weight and bias for the chosen classes, so the layer computes fewer logits and the
softmax normalizes over those alone: a class's probability is then relative to the kept
classes (argmax among them is unchanged; confidences rise where dropped classes took
probability). The rest of the graph is untouched.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ocrmill.errors import ModelError

# Nodes that may sit between the linear layer and the softmax without changing the classes.
_PASS_THROUGH = ("Identity", "Cast")


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


def restrict_classes(model: Any, keep: Sequence[int]) -> Any:
    """A copy of the recognizer ``model`` (an ``onnx.ModelProto``) that outputs only the
    classes ``keep`` (indices into its class axis, in order).

    Raises :class:`ModelError` when the graph does not end in a linear layer and a softmax
    over the last axis, with weights stored in the file.
    """
    import onnx

    from ocrmill.backends.onnx_rewrite import hoist_constants

    out = hoist_constants(model)  # weights stored as Constant nodes become initializers
    graph = out.graph
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
    index = np.asarray(keep, dtype=np.int64)
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
        if bias is None or weight is None:
            raise ModelError("recognizer head: no MatMul weight and Add bias in the file")
        w, b = onnx.numpy_helper.to_array(weight), onnx.numpy_helper.to_array(bias)
        if w.ndim != 2 or b.shape != (w.shape[1],):
            raise ModelError(f"recognizer head weights of shapes {w.shape}, {b.shape}")
        if index.max(initial=0) >= w.shape[1]:
            raise ModelError(f"class {index.max()} is beyond the head's {w.shape[1]} classes")
        _replace(weight, w[:, index])
        _replace(bias, b[index])
    elif linear is not None and linear.op_type == "Gemm":
        trans_b = next((a.i for a in linear.attribute if a.name == "transB"), 0)
        weight = _initializer(graph, linear.input[1])
        bias = _initializer(graph, linear.input[2]) if len(linear.input) > 2 else None
        if weight is None:
            raise ModelError("recognizer head: no Gemm weight in the file")
        w = onnx.numpy_helper.to_array(weight)
        _replace(weight, w[index] if trans_b else w[:, index])
        if bias is not None:
            _replace(bias, onnx.numpy_helper.to_array(bias)[index])
    else:
        found = linear.op_type if linear is not None else "a graph input"
        raise ModelError(f"recognizer head ends in {found}, not a linear layer")
    # Intermediate shapes recorded for the old class count would contradict the new one.
    del graph.value_info[:]
    dims = graph.output[0].type.tensor_type.shape.dim
    if dims:
        dims[len(dims) - 1].Clear()
        dims[len(dims) - 1].dim_value = len(index)
    return out
