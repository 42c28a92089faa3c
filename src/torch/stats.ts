// The one normalisation every layer meets: torchvision's ImageNet weights expect it (the zoo),
// fastai normalises with it by default (the data), exported models record it. Defined here, the
// layer both import, so that it exists once.

/** Per-channel mean and standard deviation (RGB), on pixels scaled to [0, 1]. */
export interface Stats {
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
}

/** ImageNet's channel statistics (fastai's imagenet_stats, torchvision's Normalize for its weights). */
export const IMAGENET_STATS: Stats = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
