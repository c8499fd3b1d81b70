"""5-D GridSample -> GridSample3D plugin nodes, on W as exported and on hand-made graphs."""
from __future__ import annotations

import onnx
import pytest
import torch
from onnx import TensorProto, helper

from talkrt.export.trt_rewrite import PLUGIN_NAMESPACE, plugin_nodes, rewrite_grid_sample_3d


def _graph(rank: int, **attrs) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2] + [4] * (rank - 2))
    g = helper.make_tensor_value_info("g", TensorProto.FLOAT, [1] + [3] * (rank - 2) + [rank - 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    node = helper.make_node("GridSample", ["x", "g"], ["y"], name="gs", **attrs)
    return helper.make_model(helper.make_graph([node], "g", [x, g], [y]), opset_imports=[helper.make_opsetid("", 20)])


def test_warp_onnx_gets_two_plugin_nodes(tmp_path):
    from talkrt.export.export_liveportrait import _export
    from talkrt.models.lp_warping import WarpingNetwork

    dm = dict(block_expansion=4, max_features=16, num_blocks=2, reshape_depth=4, compress=2)
    net = WarpingNetwork(num_kp=3, block_expansion=4, max_features=16, num_down_blocks=1, reshape_channel=4,
                         dense_motion_params=dm).eval()
    kp = torch.rand(1, 3, 3) - 0.5
    _export(net, (torch.randn(1, 4, 4, 8, 8), kp, kp + 0.05), tmp_path / "warp.onnx",
            ["feature_3d", "kp_driving", "kp_source"], ["warped", "occlusion", "deformation"])
    model = onnx.load(tmp_path / "warp.onnx")
    assert sum(n.op_type == "GridSample" for n in model.graph.node) == 2
    rewritten, done = rewrite_grid_sample_3d(model)
    assert len(done) == 2 and all(r.align_corners == 0 for r in done)
    assert not any(n.op_type == "GridSample" for n in rewritten.graph.node)
    nodes = plugin_nodes(rewritten)
    assert len(nodes) == 2
    attrs = {a.name: helper.get_attribute_value(a) for a in nodes[0].attribute}
    assert attrs["plugin_namespace"] == b"talkrt" and attrs["plugin_version"] == b"1"
    assert attrs["mode"] == b"linear" and attrs["padding_mode"] == b"zeros"
    assert any(o.domain == PLUGIN_NAMESPACE for o in rewritten.opset_import)
    # the plugin node keeps the original tensor names, so the rest of the graph is untouched
    assert [n.output for n in nodes] == [n.output for n in model.graph.node if n.op_type == "GridSample"]
    assert len(rewritten.graph.node) == len(model.graph.node)


def test_four_d_grid_sample_is_left_to_tensorrt():
    rewritten, done = rewrite_grid_sample_3d(_graph(4, mode="linear"))
    assert done == [] and rewritten.graph.node[0].op_type == "GridSample"


def test_align_corners_is_carried():
    _, done = rewrite_grid_sample_3d(_graph(5, align_corners=1))
    assert [d.align_corners for d in done] == [1]


@pytest.mark.parametrize("attrs", [dict(mode="nearest"), dict(padding_mode="border")])
def test_unsupported_sampling_is_an_error(attrs):
    with pytest.raises(ValueError, match="no plugin implementation"):
        rewrite_grid_sample_3d(_graph(5, **attrs))


def test_original_model_is_not_modified():
    model = _graph(5)
    rewrite_grid_sample_3d(model)
    assert model.graph.node[0].op_type == "GridSample" and not plugin_nodes(model)
