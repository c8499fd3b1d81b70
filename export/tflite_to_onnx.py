"""Convert MediaPipe's small face models from TFLite flatbuffers to ONNX.

A development-time tool (needs the `tflite` flatbuffer schema package and `onnx`; neither is a
runtime dependency). It handles exactly the operator set found in BlazeFace, the 468-point face
mesh and the iris model: CONV_2D, DEPTHWISE_CONV_2D, PRELU, RELU, ADD, MAX_POOL_2D, PAD, RESHAPE,
CONCATENATION and DEQUANTIZE of constant fp16 weights. Anything else is a loud error.

Layout: TFLite is NHWC. The ONNX graph keeps the original NHWC input and output tensors (same names
and shapes) and runs NCHW inside; 4-D activations are transposed back to NHWC only before a
layout-sensitive op (RESHAPE) or a graph output.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
import tflite

_OPNAMES = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
_NCHW_TO_NHWC = [0, 2, 3, 1]
_NHWC_TO_NCHW = [0, 3, 1, 2]


def _same_pads(in_hw, kernel_hw, stride_hw, dilation_hw=(1, 1)) -> list[int]:
    """TF 'SAME' padding as explicit ONNX pads [top, left, bottom, right]."""
    begin, end = [], []
    for size, k, s, d in zip(in_hw, kernel_hw, stride_hw, dilation_hw):
        k_eff = (k - 1) * d + 1
        out = -(-size // s)
        total = max((out - 1) * s + k_eff - size, 0)
        begin.append(total // 2)
        end.append(total - total // 2)
    return begin + end


class _Converter:
    def __init__(self, buf: bytes):
        self.model = tflite.Model.GetRootAsModel(buf, 0)
        self.graph = self.model.Subgraphs(0)
        self.nodes: list = []
        self.inits: dict[str, np.ndarray] = {}
        self.consts: dict[int, np.ndarray] = {}  # tflite tensor index -> folded constant
        self.names: dict[int, str] = {}  # tflite tensor index -> ONNX name (NCHW for 4-D)
        self.counter = 0

    # -- tensors ------------------------------------------------------------------------------
    def tensor(self, idx: int):
        return self.graph.Tensors(idx)

    def shape(self, idx: int) -> list[int]:
        return [int(v) for v in self.tensor(idx).ShapeAsNumpy()]

    def const(self, idx: int) -> np.ndarray:
        if idx in self.consts:
            return self.consts[idx]
        t = self.tensor(idx)
        data = self.model.Buffers(t.Buffer()).DataAsNumpy()
        if isinstance(data, int) or data.size == 0:
            raise ValueError(f"tensor {t.Name().decode()} is not a constant")
        dtype = {tflite.TensorType.FLOAT32: np.float32, tflite.TensorType.FLOAT16: np.float16,
                 tflite.TensorType.INT32: np.int32, tflite.TensorType.INT64: np.int64}[t.Type()]
        arr = np.frombuffer(data.tobytes(), dtype=dtype).reshape(self.shape(idx))
        self.consts[idx] = arr
        return arr

    def fresh(self, stem: str) -> str:
        self.counter += 1
        return f"{stem}_{self.counter}"

    def init(self, stem: str, arr: np.ndarray) -> str:
        name = self.fresh(stem)
        self.inits[name] = arr
        return name

    def emit(self, op: str, inputs: list[str], output: str | None = None, **attrs) -> str:
        output = output or self.fresh(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [output], **attrs))
        return output

    def activation(self, name: str, fused: int) -> str:
        if fused == tflite.ActivationFunctionType.NONE:
            return name
        if fused == tflite.ActivationFunctionType.RELU:
            return self.emit("Relu", [name])
        if fused == tflite.ActivationFunctionType.RELU6:
            return self.emit("Clip", [name, self.init("lo", np.float32(0)), self.init("hi", np.float32(6))])
        raise NotImplementedError(f"fused activation {fused}")

    # -- operators ----------------------------------------------------------------------------
    def convert(self) -> onnx.ModelProto:
        g = self.graph
        inputs, outputs = [], []
        for i in range(g.InputsLength()):
            idx = g.Inputs(i)
            name = self.tensor(idx).Name().decode()
            inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, self.shape(idx)))
            self.names[idx] = self.emit("Transpose", [name], perm=_NHWC_TO_NCHW)
        for i in range(g.OperatorsLength()):
            self.operator(g.Operators(i))
        for i in range(g.OutputsLength()):
            idx = g.Outputs(i)
            name = self.tensor(idx).Name().decode()
            src = self.names[idx]
            if len(self.shape(idx)) == 4:
                self.emit("Transpose", [src], name, perm=_NCHW_TO_NHWC)
            else:
                self.emit("Identity", [src], name)
            outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, self.shape(idx)))
        graph = helper.make_graph(self.nodes, "mediapipe", inputs, outputs,
                                  [numpy_helper.from_array(v, k) for k, v in self.inits.items()])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                                  producer_name="talkrt.export.tflite_to_onnx")
        model.ir_version = 8
        onnx.checker.check_model(model, full_check=True)
        return model

    def operator(self, op) -> None:
        code = self.model.OperatorCodes(op.OpcodeIndex())
        kind = _OPNAMES[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
        ins = [op.Inputs(i) for i in range(op.InputsLength())]
        out = op.Outputs(0)
        handler = getattr(self, f"_op_{kind.lower()}", None)
        if handler is None:
            raise NotImplementedError(f"TFLite operator {kind} is not supported")
        handler(op, ins, out)

    def _op_dequantize(self, op, ins, out):
        self.consts[out] = self.const(ins[0]).astype(np.float32)

    def _conv(self, op, ins, out, depthwise: bool):
        opts_cls = tflite.DepthwiseConv2DOptions if depthwise else tflite.Conv2DOptions
        opts = opts_cls()
        tab = op.BuiltinOptions()
        opts.Init(tab.Bytes, tab.Pos)
        w = self.const(ins[1]).astype(np.float32)  # conv [O,kh,kw,I]; depthwise [1,kh,kw,C]
        if depthwise:
            channels = self.shape(ins[0])[3]
            w_onnx = w.transpose(3, 0, 1, 2)  # [C*m, 1, kh, kw]
            group = channels
        else:
            w_onnx = w.transpose(0, 3, 1, 2)
            group = 1
        kh, kw = w.shape[1:3]
        stride = (opts.StrideH(), opts.StrideW())
        dil = (opts.DilationHFactor(), opts.DilationWFactor())
        in_hw = self.shape(ins[0])[1:3]
        pads = _same_pads(in_hw, (kh, kw), stride, dil) if opts.Padding() == tflite.Padding.SAME else [0, 0, 0, 0]
        args = [self.names[ins[0]], self.init("w", np.ascontiguousarray(w_onnx))]
        if len(ins) > 2 and ins[2] >= 0:
            args.append(self.init("b", self.const(ins[2]).astype(np.float32)))
        y = self.emit("Conv", args, kernel_shape=[kh, kw], strides=list(stride), dilations=list(dil),
                      pads=pads, group=group)
        self.names[out] = self.activation(y, opts.FusedActivationFunction())

    def _op_conv_2d(self, op, ins, out):
        self._conv(op, ins, out, depthwise=False)

    def _op_depthwise_conv_2d(self, op, ins, out):
        self._conv(op, ins, out, depthwise=True)

    def _op_prelu(self, op, ins, out):
        alpha = self.const(ins[1]).astype(np.float32).reshape(-1)
        slope = self.init("slope", alpha.reshape(-1, 1, 1))
        self.names[out] = self.emit("PRelu", [self.names[ins[0]], slope])

    def _op_relu(self, op, ins, out):
        self.names[out] = self.emit("Relu", [self.names[ins[0]]])

    def _op_add(self, op, ins, out):
        opts = tflite.AddOptions()
        tab = op.BuiltinOptions()
        opts.Init(tab.Bytes, tab.Pos)
        y = self.emit("Add", [self.names[ins[0]], self.names[ins[1]]])
        self.names[out] = self.activation(y, opts.FusedActivationFunction())

    def _op_max_pool_2d(self, op, ins, out):
        opts = tflite.Pool2DOptions()
        tab = op.BuiltinOptions()
        opts.Init(tab.Bytes, tab.Pos)
        k = (opts.FilterHeight(), opts.FilterWidth())
        s = (opts.StrideH(), opts.StrideW())
        pads = _same_pads(self.shape(ins[0])[1:3], k, s) if opts.Padding() == tflite.Padding.SAME else [0, 0, 0, 0]
        if any(pads):
            raise NotImplementedError("SAME-padded max pool with non-zero pads")
        self.names[out] = self.emit("MaxPool", [self.names[ins[0]]], kernel_shape=list(k), strides=list(s))

    def _op_pad(self, op, ins, out):
        p = self.const(ins[1]).astype(np.int64)  # [4, 2] NHWC
        nchw = p[_NHWC_TO_NCHW]
        pads = np.concatenate([nchw[:, 0], nchw[:, 1]])
        self.names[out] = self.emit("Pad", [self.names[ins[0]], self.init("pads", pads)])

    def _op_reshape(self, op, ins, out):
        src = self.names[ins[0]]
        if len(self.shape(ins[0])) == 4:
            src = self.emit("Transpose", [src], perm=_NCHW_TO_NHWC)
        target = np.array(self.shape(out), dtype=np.int64)
        y = self.emit("Reshape", [src, self.init("shape", target)])
        if len(target) == 4:
            y = self.emit("Transpose", [y], perm=_NHWC_TO_NCHW)
        self.names[out] = y

    def _op_concatenation(self, op, ins, out):
        opts = tflite.ConcatenationOptions()
        tab = op.BuiltinOptions()
        opts.Init(tab.Bytes, tab.Pos)
        rank = len(self.shape(out))
        axis = opts.Axis() % rank
        if rank == 4:
            axis = _NCHW_TO_NHWC.index(axis)
        y = self.emit("Concat", [self.names[i] for i in ins], axis=axis)
        self.names[out] = self.activation(y, opts.FusedActivationFunction())


def convert(tflite_path: Path) -> onnx.ModelProto:
    return _Converter(Path(tflite_path).read_bytes()).convert()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tflite", type=Path)
    ap.add_argument("onnx", type=Path)
    args = ap.parse_args()
    model = convert(args.tflite)
    onnx.save(model, args.onnx)
    print(f"{args.tflite} -> {args.onnx} ({args.onnx.stat().st_size} bytes, {len(model.graph.node)} nodes)")


if __name__ == "__main__":
    main()
