"""A tiny ONNX graph builder shared by the exported graphs (head graphs, preprocessing): each
method adds one node or constant and returns its output's name."""

from __future__ import annotations

from typing import Any

import numpy as np


class GraphBuilder:
    """Nodes and constants of one graph, named in order (``prefix`` keeps nested graphs apart)."""

    def __init__(self, onnx: Any, float_dtype: Any = np.float32, prefix: str = "") -> None:
        self.onnx, self.float_dtype, self.prefix, self.count = onnx, float_dtype, prefix, 0
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []

    def op(self, kind: str, *inputs: str, **attrs: Any) -> str:
        self.count += 1
        out = f"{self.prefix}{kind.lower()}_{self.count}"
        self.nodes.append(self.onnx.helper.make_node(kind, list(inputs), [out], **attrs))
        return out

    def const(self, value: Any, dtype: Any = None) -> str:
        """A constant; floating values take the builder's ``float_dtype`` unless ``dtype`` is given."""
        self.count += 1
        name = f"{self.prefix}const_{self.count}"
        self.initializers.append(self.onnx.numpy_helper.from_array(
            np.asarray(value, dtype=dtype or self.float_dtype), name))
        return name

    def rename(self, source: str, target: str) -> None:
        self.nodes.append(self.onnx.helper.make_node("Identity", [source], [target]))

    def _live(self, outputs: set[str]) -> tuple[list, list]:
        """The nodes and initializers the graph's outputs depend on. Dead ones (the step size of a
        0-step head rule) are dropped: onnxruntime prints a warning for every unused initializer."""
        needed, live = set(outputs), []
        for node in reversed(self.nodes):
            if any(out in needed for out in node.output):
                live.append(node)
                needed.update(node.input)
                for attribute in node.attribute:  # a Loop body's nodes read outer values too
                    needed.update(name for inner in attribute.g.node for name in inner.input)
        return live[::-1], [init for init in self.initializers if init.name in needed]

    def model(self, name: str, inputs: list, outputs: list, opset: int) -> Any:
        """The checked ModelProto, at an IR version onnxruntime 1.17+ (and its web/mobile builds) read."""
        nodes, initializers = self._live({o.name for o in outputs})
        graph = self.onnx.helper.make_graph(nodes, name, inputs, outputs, initializer=initializers)
        model = self.onnx.helper.make_model(graph, opset_imports=[self.onnx.helper.make_opsetid("", opset)],
                                            producer_name="anil-edge")
        model.ir_version = min(model.ir_version, 10)
        self.onnx.checker.check_model(model, full_check=True)
        return model
