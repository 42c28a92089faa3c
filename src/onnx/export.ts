// ONNX export of a visiontune classifier. The graph comes from visiontune's own forward pass:
// the model runs once in eval mode on an example batch while every libtorch operator call is
// observed (as torch.onnx traces a TorchScript graph), and each call becomes its ONNX nodes
// (a symbolic function per operator, as torch.onnx's symbolic_opset*.py); parameters and
// buffers become initializers, the batch axis stays dynamic. The protobuf is encoded by
// onnx-proto (protobufjs over onnx.proto). Optional preprocessing in the graph takes uint8 RGB
// pixels [N, H, W, 3], cuts the centre square, resamples it to the model's size (bilinear,
// corners aligned, as visiontune's evaluation transform) and normalises.
import onnxProto from 'onnx-proto';
import { noGrad, randn, type Tensor } from '../torch/index.js';
import { setOpObserver } from '../torch/dispatch.js';
import type { Module } from '../nn/index.js';
import { writeAtomic } from '../io/atomic.js';
import { MIN_OPSET, MAX_OPSET, DEFAULT_OPSET } from '../models/defaults.js';

const { onnx } = onnxProto;
type NodeProto = onnxProto.onnx.INodeProto;
type TensorProto = onnxProto.onnx.ITensorProto;
type AttributeProto = onnxProto.onnx.IAttributeProto;

export { MIN_OPSET, MAX_OPSET, DEFAULT_OPSET } from '../models/defaults.js';

/** An operator call the exporter has no ONNX translation for, or a graph it cannot write. */
export class OnnxExportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OnnxExportError';
  }
}

export interface OnnxGraphOptions {
  /** ONNX opset (MIN_OPSET…MAX_OPSET). Default DEFAULT_OPSET. */
  opset?: number;
  /** Divide the logits by this before the softmax (the model's calibration). Default 1. */
  temperature?: number;
  /** Preprocessing in the graph: its input is uint8 pixels [N, H, W, 3] instead of the model's float input. */
  preprocess?: { size: number; cropSize?: number; mean: readonly number[]; std: readonly number[] } | null;
  /** metadata_props: classes, input size, normalisation, version… */
  metadata?: Record<string, string>;
  /** The graph's name. */
  name?: string;
}

type Handle = object;

const attr = {
  int: (name: string, i: number): AttributeProto => ({ name, type: onnx.AttributeProto.AttributeType.INT, i }),
  ints: (name: string, ints: number[]): AttributeProto => ({ name, type: onnx.AttributeProto.AttributeType.INTS, ints }),
  float: (name: string, f: number): AttributeProto => ({ name, type: onnx.AttributeProto.AttributeType.FLOAT, f }),
  string: (name: string, s: string): AttributeProto => ({ name, type: onnx.AttributeProto.AttributeType.STRING, s: Buffer.from(s) }),
};
const pair = (v: unknown): [number, number] => (Array.isArray(v) ? (v.length === 1 ? [v[0], v[0]] : [v[0], v[1]]) as [number, number] : [v as number, v as number]);

// The graph being built: nodes, initializers, and the name of each traced value.
class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  readonly names = new Map<Handle, string>();
  #count = 0;

  fresh(hint: string): string { return `${hint}_${this.#count++}`; }

  node(op: string, inputs: string[], attributes: AttributeProto[] = [], outputs = [this.fresh(op.toLowerCase())]): string[] {
    this.nodes.push({ opType: op, input: inputs, output: outputs, attribute: attributes, name: `${op}_${this.nodes.length}` });
    return outputs;
  }

  floatInit(name: string, values: Float32Array | number[], dims: number[]): string {
    const data = values instanceof Float32Array ? values : Float32Array.from(values);
    this.initializers.push({ name, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) });
    return name;
  }

  int64Init(name: string, values: number[]): string {
    const data = BigInt64Array.from(values.map(BigInt));
    this.initializers.push({ name, dims: [values.length], dataType: onnx.TensorProto.DataType.INT64, rawData: new Uint8Array(data.buffer) });
    return name;
  }

  scalar(value: number): string { return this.floatInit(this.fresh('const'), [value], []); }
}

/**
 * Returns an ONNX ModelProto's bytes for `model` (in eval mode; NCHW float32 input [N, 3, size,
 * size], N dynamic) with outputs `logits` and `probabilities` (softmax of logits / temperature).
 * Throws OnnxExportError naming an operator it cannot translate.
 */
export function onnxModelBytes(model: Module, size: number, o: OnnxGraphOptions = {}): Uint8Array {
  const opset = o.opset ?? DEFAULT_OPSET;
  if (!Number.isInteger(opset) || opset < MIN_OPSET || opset > MAX_OPSET) {
    throw new OnnxExportError(`opset ${opset} is not supported: give ${MIN_OPSET} to ${MAX_OPSET}`);
  }
  const g = new GraphBuilder();
  const wasTraining = model.training;
  model.eval();
  // Parameters and buffers are initializers under their state-dict names.
  const state = model.stateDict();
  const known = new Map<Handle, Tensor>();
  for (const [k, t] of state) {
    known.set(t.handle, t);
    g.names.set(t.handle, k);
  }
  const used = new Set<string>();
  const tensorName = (h: unknown, op: string): string => {
    const name = g.names.get(h as Handle);
    if (name === undefined) throw new OnnxExportError(`cannot export: ${op} uses a tensor made during the forward pass, not a parameter, buffer or earlier result`);
    if (known.has(h as Handle)) used.add(name);
    return name;
  };

  let inputName = 'input';
  let graphInput: onnxProto.onnx.IValueInfoProto;
  const batchDim = { dimParam: 'batch' };
  if (o.preprocess) {
    inputName = 'pixels';
    graphInput = valueInfo(inputName, onnx.TensorProto.DataType.UINT8, [batchDim, { dimParam: 'height' }, { dimParam: 'width' }, { dimValue: 3 }]);
  } else {
    graphInput = valueInfo(inputName, onnx.TensorProto.DataType.FLOAT, [batchDim, { dimValue: 3 }, { dimValue: size }, { dimValue: size }]);
  }
  const modelInput = o.preprocess ? preprocessNodes(g, inputName, size, o.preprocess) : inputName;

  // An example batch of two: the trace needs values flowing through, any will do.
  const example = randn([2, 3, size, size]);
  g.names.set(example.handle, modelInput);
  const record: { op: string; args: readonly unknown[]; result: unknown; inPlace: boolean }[] = [];
  let logits: Tensor;
  const before = setOpObserver((op, args, result, inPlace) => record.push({ op, args: [...args], result, inPlace }));
  try {
    logits = noGrad(() => model.forward(example));
  } finally {
    setOpObserver(before);
  }
  try {
    for (const r of record) emit(g, r.op, r.args, r.result, r.inPlace, opset, tensorName);
    const out = tensorName(logits.handle, 'the output');
    g.node('Identity', [out], [], ['logits']);
    const scaled = o.temperature && o.temperature !== 1 ? g.node('Div', ['logits', g.scalar(o.temperature)])[0] : 'logits';
    g.node('Softmax', [scaled], [attr.int('axis', 1)], ['probabilities']);
    const numClasses = logits.size(1);
    for (const [k, t] of state) {
      if (!used.has(k)) continue;
      if (t.dtype !== 'float32') throw new OnnxExportError(`cannot export ${k}: ${t.dtype} tensors are not written`);
      g.floatInit(k, t.contiguous().toTypedArray() as Float32Array, t.shape);
    }
    const graph: onnxProto.onnx.IGraphProto = {
      name: o.name ?? 'visiontune',
      node: g.nodes,
      initializer: g.initializers,
      input: [graphInput],
      output: [
        valueInfo('logits', onnx.TensorProto.DataType.FLOAT, [batchDim, { dimValue: numClasses }]),
        valueInfo('probabilities', onnx.TensorProto.DataType.FLOAT, [batchDim, { dimValue: numClasses }]),
      ],
    };
    const modelProto = onnx.ModelProto.create({
      irVersion: 8,
      opsetImport: [{ domain: '', version: opset }],
      producerName: 'visiontune',
      graph,
      metadataProps: Object.entries(o.metadata ?? {}).map(([key, value]) => ({ key, value })),
    });
    return onnx.ModelProto.encode(modelProto).finish();
  } finally {
    logits.dispose();
    example.dispose();
    if (wasTraining) model.train();
  }
}

/** Writes the bytes of onnxModelBytes to `file` (atomically). */
export function writeOnnx(file: string, bytes: Uint8Array): void {
  writeAtomic(file, [bytes]);
}

function valueInfo(name: string, elemType: number, dims: onnxProto.onnx.TensorShapeProto.IDimension[]): onnxProto.onnx.IValueInfoProto {
  return { name, type: { tensorType: { elemType, shape: { dim: dims } } } };
}

// uint8 [N, H, W, 3] → float [N, 3, size, size]: NCHW, the centre crop × crop square (the shorter
// side when cropSize is absent), resampled bilinearly with corners aligned, normalised.
function preprocessNodes(g: GraphBuilder, input: string, size: number, p: NonNullable<OnnxGraphOptions['preprocess']>): string {
  const f = g.node('Cast', [input], [attr.int('to', onnx.TensorProto.DataType.FLOAT)])[0];
  const nchw = g.node('Transpose', [f], [attr.ints('perm', [0, 3, 1, 2])])[0];
  const shape = g.node('Shape', [nchw])[0];
  const hw = g.node('Slice', [shape, g.int64Init(g.fresh('s'), [2]), g.int64Init(g.fresh('e'), [4])])[0];
  // The square's side: cropSize, or the shorter side.
  const side = p.cropSize ? g.int64Init(g.fresh('side'), [p.cropSize]) : g.node('ReduceMin', [hw], [attr.int('keepdims', 1)])[0];
  const margin = g.node('Sub', [hw, side])[0];
  const start = g.node('Div', [margin, g.int64Init(g.fresh('two'), [2])])[0];
  const end = g.node('Add', [start, side])[0];
  const square = g.node('Slice', [nchw, start, end, g.int64Init(g.fresh('axes'), [2, 3])])[0];
  const sizes = g.node('Concat', [g.node('Slice', [shape, g.int64Init(g.fresh('s'), [0]), g.int64Init(g.fresh('e'), [2])])[0],
    g.int64Init(g.fresh('hw'), [size, size])], [attr.int('axis', 0)])[0];
  const resized = g.node('Resize', [square, '', '', sizes], [attr.string('mode', 'linear'), attr.string('coordinate_transformation_mode', 'align_corners')])[0];
  // (x / 255 − mean) / std = x · 1/(255 std) − mean/std, per channel.
  const scale = g.floatInit(g.fresh('scale'), p.std.map((s) => 1 / (255 * s)), [1, 3, 1, 1]);
  const shift = g.floatInit(g.fresh('shift'), p.mean.map((m, i) => -m / p.std[i]), [1, 3, 1, 1]);
  return g.node('Add', [g.node('Mul', [resized, scale])[0], shift])[0];
}

// The in-place operators the zoo's blocks use, as torchvision's do (activations with inplace=True,
// and the residual `result += input` of EfficientNet, ResNet and ConvNeXt), and the functions
// they compute.
const IN_PLACE_OPS = new Map([
  ['aten::relu_', 'aten::relu'], ['aten::hardtanh_', 'aten::hardtanh'], ['aten::silu_', 'aten::silu'], ['aten::hardswish_', 'aten::hardswish'],
  ['aten::add_.Tensor', 'aten::add.Tensor'],
]);

// One operator call as ONNX nodes; its result(s) get the names of the nodes' outputs.
function emit(g: GraphBuilder, op: string, args: readonly unknown[], result: unknown, inPlace: boolean, opset: number,
  name: (h: unknown, op: string) => string): void {
  const short = op.replace(/^aten::/, '');
  const out = (names: string[]): void => {
    const handles = Array.isArray(result) ? result : [result];
    names.forEach((n, i) => { if (handles[i] !== undefined) g.names.set(handles[i] as Handle, n); });
  };
  const x = (): string => name(args[0], short);
  if (inPlace) {
    // An operator that overwrote its input is the same function of it: its output gets a new
    // name, which the overwritten tensor carries from here on.
    const outOfPlace = IN_PLACE_OPS.get(op);
    if (!outOfPlace) throw new OnnxExportError(`cannot export the in-place operator ${short}`);
    emit(g, outOfPlace, args, result, false, opset, name);
    return;
  }
  switch (op) {
    case 'aten::conv2d': {
      const [, w, b, stride, padding, dilation, groups] = args;
      if (typeof padding === 'string') throw new OnnxExportError(`cannot export conv2d with padding='${padding}'`);
      const [ph, pw] = pair(padding);
      const inputs = [x(), name(w, short), ...(b ? [name(b, short)] : [])];
      out(g.node('Conv', inputs, [attr.ints('strides', pair(stride)), attr.ints('pads', [ph, pw, ph, pw]), attr.ints('dilations', pair(dilation)), attr.int('group', groups as number)]));
      return;
    }
    case 'aten::batch_norm': {
      const [, w, b, mean, variance, training, , eps] = args;
      if (training) throw new OnnxExportError('cannot export batch norm in training mode');
      if (!w || !b) throw new OnnxExportError('cannot export batch norm without affine weights');
      out(g.node('BatchNormalization', [x(), name(w, short), name(b, short), name(mean, short), name(variance, short)], [attr.float('epsilon', eps as number)]));
      return;
    }
    case 'aten::layer_norm': {
      const [, shape, w, b, eps] = args;
      const axis = -(shape as number[]).length;
      if (!w || !b) throw new OnnxExportError('cannot export layer norm without affine weights');
      if (opset >= 17) {
        out(g.node('LayerNormalization', [x(), name(w, short), name(b, short)], [attr.int('axis', axis), attr.float('epsilon', eps as number)]));
      } else {
        const axes = Array.from({ length: -axis }, (_, i) => -1 - i);
        const mean = g.node('ReduceMean', [x()], [attr.ints('axes', axes), attr.int('keepdims', 1)])[0];
        const centred = g.node('Sub', [x(), mean])[0];
        const variance = g.node('ReduceMean', [g.node('Mul', [centred, centred])[0]], [attr.ints('axes', axes), attr.int('keepdims', 1)])[0];
        const std = g.node('Sqrt', [g.node('Add', [variance, g.scalar(eps as number)])[0]])[0];
        out(g.node('Add', [g.node('Mul', [g.node('Div', [centred, std])[0], name(w, short)])[0], name(b, short)]));
      }
      return;
    }
    case 'aten::linear': {
      const [, w, b] = args;
      const wt = g.node('Transpose', [name(w, short)], [attr.ints('perm', [1, 0])])[0];
      const mm = g.node('MatMul', [x(), wt])[0];
      out(b ? g.node('Add', [mm, name(b, short)]) : [mm]);
      return;
    }
    case 'aten::relu': out(g.node('Relu', [x()])); return;
    case 'aten::sigmoid': out(g.node('Sigmoid', [x()])); return;
    case 'aten::silu': out(g.node('Mul', [x(), g.node('Sigmoid', [x()])[0]])); return;
    case 'aten::hardswish': out(g.node('HardSwish', [x()])); return;
    case 'aten::hardsigmoid': out(g.node('HardSigmoid', [x()], [attr.float('alpha', 1 / 6), attr.float('beta', 0.5)])); return;
    case 'aten::hardtanh': out(g.node('Clip', [x(), g.scalar(args[1] as number), g.scalar(args[2] as number)])); return;
    case 'aten::gelu': {
      if (args[1] !== 'none') throw new OnnxExportError(`cannot export gelu with approximate='${String(args[1])}'`);
      // 0.5 · x · (1 + erf(x / √2))
      const erf = g.node('Erf', [g.node('Div', [x(), g.scalar(Math.SQRT2)])[0]])[0];
      out(g.node('Mul', [g.node('Mul', [x(), g.node('Add', [erf, g.scalar(1)])[0]])[0], g.scalar(0.5)]));
      return;
    }
    case 'aten::add.Tensor': {
      const alpha = args[2] as number | undefined;
      const other = name(args[1], short);
      out(g.node('Add', [x(), alpha === undefined || alpha === 1 ? other : g.node('Mul', [other, g.scalar(alpha)])[0]]));
      return;
    }
    case 'aten::mul.Tensor': out(g.node('Mul', [x(), name(args[1], short)])); return;
    case 'aten::adaptive_avg_pool2d':
    case 'aten::adaptive_max_pool2d': {
      const [oh, ow] = pair(args[1]);
      if (oh !== 1 || ow !== 1) throw new OnnxExportError(`cannot export ${short} to ${oh}×${ow} (only to 1×1)`);
      out(g.node(op === 'aten::adaptive_avg_pool2d' ? 'GlobalAveragePool' : 'GlobalMaxPool', [x()]));
      return;
    }
    case 'aten::max_pool2d': {
      const [, kernel, stride, padding, dilation, ceil] = args;
      const [ph, pw] = pair(padding);
      out(g.node('MaxPool', [x()], [attr.ints('kernel_shape', pair(kernel)), attr.ints('strides', pair(stride)), attr.ints('pads', [ph, pw, ph, pw]),
        attr.ints('dilations', pair(dilation)), attr.int('ceil_mode', ceil ? 1 : 0)]));
      return;
    }
    case 'aten::cat': out(g.node('Concat', (args[0] as unknown[]).map((h) => name(h, short)), [attr.int('axis', args[1] as number)])); return;
    case 'aten::flatten.using_ints': {
      const [, start, end] = args;
      if (start !== 1 || (end !== -1 && end !== undefined)) throw new OnnxExportError(`cannot export flatten(${start}, ${end}) (only flatten(1))`);
      out(g.node('Flatten', [x()], [attr.int('axis', 1)]));
      return;
    }
    case 'aten::permute': out(g.node('Transpose', [x()], [attr.ints('perm', args[1] as number[])])); return;
    case 'aten::dropout': {
      if (args[2]) throw new OnnxExportError('cannot export dropout in training mode');
      out(g.node('Identity', [x()]));
      return;
    }
    default:
      throw new OnnxExportError(`cannot export the operator ${short}: visiontune has no ONNX translation for it yet`);
  }
}
