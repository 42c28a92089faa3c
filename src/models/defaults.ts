// The zoo's defaults, in a module that loads nothing heavy.

/** The architecture fine-tuned when none is named: EfficientNetV2-S, the seed study's. */
export const DEFAULT_ARCH = 'efficientnet_v2_s';
/** Where a backbone's weights come from when not said: torchvision's ImageNet weights. */
export const DEFAULT_WEIGHTS = 'imagenet';
/** The ONNX opsets `visiontune export` writes (14: HardSwish; 17: LayerNormalization) and the default. */
export const MIN_OPSET = 14;
export const MAX_OPSET = 17;
export const DEFAULT_OPSET = 17;
/** The format `visiontune export` writes when not told: ONNX. */
export const DEFAULT_EXPORT_FORMAT = 'onnx';
/** `visiontune serve`'s address and limits when not told (see ServeOptions): loopback only, by default. */
export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 8080;
export const SERVE_DEFAULTS = { maxBatch: 16, maxWaitMs: 5, maxQueue: 256, maxBodyMb: 20, maxMegapixels: 40, requestTimeoutMs: 30_000 };
