"""ONNX rewriting for TensorRT: 5-D GridSample nodes become talkrt's `GridSample3D` plugin nodes.

TensorRT's parser rejects volumetric GridSample (specs/toolchain.md section 3.1). Its fallback plugin
importer looks a node up by (op_type, plugin_version, plugin_namespace), so the rewritten node
carries exactly those, plus the sampling attributes the plugin checks when it is created
(kernels/cuda/grid_sample3d_plugin.cpp). Run it last: after precision transforms (which run the
graph on ONNX Runtime, which has no kernel for the plugin) and right before the engine build.
"""
from __future__ import annotations

from dataclasses import dataclass

import onnx
from onnx import helper, shape_inference

PLUGIN_NAME = "GridSample3D"
PLUGIN_NAMESPACE = "talkrt"
PLUGIN_VERSION = "1"
SUPPORTED_MODES = ("linear", "bilinear")
SUPPORTED_PADDING = ("zeros",)


@dataclass(frozen=True)
class Rewrite:
    node: str  # the rewritten node's name
    align_corners: int


def _attr(node: onnx.NodeProto, name: str, default):
    for a in node.attribute:
        if a.name == name:
            value = helper.get_attribute_value(a)
            return value.decode() if isinstance(value, bytes) else value
    return default


def _ranks(model: onnx.ModelProto) -> dict[str, int]:
    inferred = shape_inference.infer_shapes(model)
    ranks = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        t = vi.type.tensor_type
        if t.HasField("shape"):
            ranks[vi.name] = len(t.shape.dim)
    return ranks


def rewrite_grid_sample_3d(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[Rewrite]]:
    """Replace every GridSample on a rank-5 input with a GridSample3D plugin node (in place on a copy).
    4-D GridSample nodes are left for TensorRT's own layer. Unsupported sampling modes are errors."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    ranks = _ranks(out)
    done: list[Rewrite] = []
    for i, node in enumerate(out.graph.node):
        if node.op_type != "GridSample" or node.domain not in ("", "ai.onnx"):
            continue
        rank = ranks.get(node.input[0])
        if rank is None:
            raise ValueError(f"GridSample node {node.name!r}: cannot infer the rank of input {node.input[0]!r}")
        if rank != 5:
            continue
        mode, padding = _attr(node, "mode", "linear"), _attr(node, "padding_mode", "zeros")
        align = int(_attr(node, "align_corners", 0))
        if mode not in SUPPORTED_MODES or padding not in SUPPORTED_PADDING:
            raise ValueError(f"GridSample node {node.name!r}: mode={mode} padding_mode={padding} has no plugin "
                             f"implementation (supported: mode linear, padding zeros)")
        name = node.name or f"GridSample3D_{i}"
        plugin = helper.make_node(PLUGIN_NAME, list(node.input), list(node.output), name=name,
                                  domain=PLUGIN_NAMESPACE, align_corners=align, mode="linear",
                                  padding_mode="zeros", plugin_namespace=PLUGIN_NAMESPACE,
                                  plugin_version=PLUGIN_VERSION)
        out.graph.node[i].CopyFrom(plugin)
        done.append(Rewrite(name, align))
    if done and not any(o.domain == PLUGIN_NAMESPACE for o in out.opset_import):
        out.opset_import.append(helper.make_opsetid(PLUGIN_NAMESPACE, 1))
    return out, done


def plugin_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    return [n for n in model.graph.node if n.op_type == PLUGIN_NAME and n.domain == PLUGIN_NAMESPACE]
