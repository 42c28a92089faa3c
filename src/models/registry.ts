// The zoo: the one place that knows which architectures exist, how to build them, and where
// their torchvision ImageNet weights live with the transforms those weights expect.
import { IMAGENET_STATS } from '../torch/index.js';
import type { Backbone } from './blocks.js';
import { efficientnetB0, efficientnetV2S, efficientnetV2M, efficientnetV2L } from './efficientnet.js';
import { resnet18, resnet34, resnet50 } from './resnet.js';
import { mobilenetV2, mobilenetV3Large } from './mobilenet.js';
import { convnextTiny } from './convnext.js';

export type Interpolation = 'bilinear' | 'bicubic';

/** How the weights' evaluation images were prepared (torchvision's ImageClassification preset). */
export interface EvalTransforms {
  /** The shorter side is resized to this, keeping the aspect ratio. */
  resizeSize: number;
  /** Then the centre is cropped to this square. */
  cropSize: number;
  interpolation: Interpolation;
  mean: [number, number, number];
  std: [number, number, number];
}

export interface PretrainedWeights {
  url: string;
  /** The leading hex digits of the file's SHA-256 (torch.hub's convention: the file-name suffix). */
  sha256Prefix: string;
  transforms: EvalTransforms;
  /** ImageNet-1k top-1 accuracy in percent, as torchvision reports it. */
  top1: number;
  numParams: number;
}

export interface ZooEntry {
  name: string;
  build(o?: { numClasses?: number }): Backbone;
  weights: PretrainedWeights;
}

const [IMAGENET_MEAN, IMAGENET_STD] = [[...IMAGENET_STATS.mean], [...IMAGENET_STATS.std]] as [number, number, number][];
/** Where torchvision's weights are published; VISIONTUNE_WEIGHTS_BASE_URL replaces this prefix. */
export const TORCHVISION_BASE_URL = 'https://download.pytorch.org/models/';

function weights(file: string, numParams: number, top1: number, resizeSize: number, cropSize: number,
  interpolation: Interpolation = 'bilinear', mean = IMAGENET_MEAN, std = IMAGENET_STD): PretrainedWeights {
  const hash = /-([a-f0-9]+)\./.exec(file);
  if (!hash) throw new Error(`weight file ${file} has no hash suffix`);
  return { url: TORCHVISION_BASE_URL + file, sha256Prefix: hash[1], top1, numParams, transforms: { resizeSize, cropSize, interpolation, mean, std } };
}

// torchvision 0.14's DEFAULT weights for each architecture.
const ENTRIES: ZooEntry[] = [
  { name: 'efficientnet_v2_s', build: efficientnetV2S, weights: weights('efficientnet_v2_s-dd5fe13b.pth', 21_458_488, 84.228, 384, 384) },
  { name: 'efficientnet_v2_m', build: efficientnetV2M, weights: weights('efficientnet_v2_m-dc08266a.pth', 54_139_356, 85.112, 480, 480) },
  {
    name: 'efficientnet_v2_l', build: efficientnetV2L,
    weights: weights('efficientnet_v2_l-59c71312.pth', 118_515_272, 85.808, 480, 480, 'bicubic', [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]),
  },
  { name: 'efficientnet_b0', build: efficientnetB0, weights: weights('efficientnet_b0_rwightman-3dd342df.pth', 5_288_548, 77.692, 256, 224, 'bicubic') },
  { name: 'resnet18', build: resnet18, weights: weights('resnet18-f37072fd.pth', 11_689_512, 69.758, 256, 224) },
  { name: 'resnet34', build: resnet34, weights: weights('resnet34-b627a593.pth', 21_797_672, 73.314, 256, 224) },
  { name: 'resnet50', build: resnet50, weights: weights('resnet50-11ad3fa6.pth', 25_557_032, 80.858, 232, 224) },
  { name: 'mobilenet_v2', build: mobilenetV2, weights: weights('mobilenet_v2-7ebf99e0.pth', 3_504_872, 72.154, 232, 224) },
  { name: 'mobilenet_v3_large', build: mobilenetV3Large, weights: weights('mobilenet_v3_large-5c1a4163.pth', 5_483_032, 75.274, 232, 224) },
  { name: 'convnext_tiny', build: convnextTiny, weights: weights('convnext_tiny-983f1562.pth', 28_589_128, 82.52, 236, 224) },
];

export const ZOO: ReadonlyMap<string, ZooEntry> = new Map(ENTRIES.map((e) => [e.name, e]));

/** An architecture name that is not in the zoo; the message lists the ones that are. */
export class UnknownArchError extends Error {
  constructor(readonly arch: string) {
    super(`unknown architecture '${arch}'; the zoo has: ${[...ZOO.keys()].join(', ')}`);
    this.name = 'UnknownArchError';
  }
}

/** Returns the zoo entry for `arch`, or throws UnknownArchError. */
export function zooEntry(arch: string): ZooEntry {
  const e = ZOO.get(arch);
  if (!e) throw new UnknownArchError(arch);
  return e;
}
