// The zoo's defaults, in a module that loads nothing heavy.

/** The architecture fine-tuned when none is named: EfficientNetV2-S, the seed study's. */
export const DEFAULT_ARCH = 'efficientnet_v2_s';
/** Where a backbone's weights come from when not said: torchvision's ImageNet weights. */
export const DEFAULT_WEIGHTS = 'imagenet';
