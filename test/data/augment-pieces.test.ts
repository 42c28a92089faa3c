// Acceptance (issue 12, augmentations as small pieces): each geometric and lighting augmentation
// is a named function giving its matrix or its lighting change; drawAugParams composes them in
// one fixed order, so a batch is still one affine_grid + grid_sample.
import test from 'node:test';
import assert from 'node:assert/strict';
import {
  drawAugParams, randomResizedCrop, warp, flip, rotate, zoom, brightness, contrast, COORD_AUGS, LIGHTING_AUGS, NO_AUG, AUG_DEFAULTS,
  type AugOptions,
} from '../../src/data/augment.js';

/** A generator that replays `values`. */
const replay = (...values: number[]): (() => number) => () => {
  const v = values.shift();
  if (v === undefined) throw new Error('drew more numbers than expected');
  return v;
};
const only = (o: Partial<AugOptions>): AugOptions => ({ ...NO_AUG, ...o });
const close = (a: ArrayLike<number>, b: number[]): void => Array.from(a).forEach((v, i) => assert.ok(Math.abs(v - b[i]) < 1e-12, `${i}: ${v} vs ${b[i]}`));

test('issue 12: each augmentation is a small function that fires, or not, by its options', () => {
  assert.deepEqual(flip(replay(0.2), only({ doFlip: true, flipP: 0.5 })), [-1, 0, 0, 0, 1, 0, 0, 0, 1]);
  assert.equal(flip(replay(0.7), only({ doFlip: true, flipP: 0.5 })), null);
  assert.equal(flip(replay(), NO_AUG), null, 'off: draws nothing');
  close(rotate(replay(0, 1), only({ maxRotate: 90, pAffine: 1 }))!, [0, -1, 0, 1, 0, 0, 0, 0, 1]);
  close(zoom(replay(0, 1, 1, 0), only({ maxZoom: 2, pAffine: 1 }))!, [0.5, 0, 0.5, 0, 0.5, -0.5, 0, 0, 1]);
  close(randomResizedCrop(replay(0.25 / 0.75 - 1 / 3, 1, 0), only({ minScale: 0.25 }))!, [0.5, 0, 0.5, 0, 0.5, -0.5, 0, 0, 1]);
  const w = warp(replay(0, 1, 0.5), only({ maxWarp: 0.2, pAffine: 1 }))!;
  assert.equal(w.length, 9);
  assert.ok(Math.abs(w[6]) + Math.abs(w[7]) > 0, 'a keystone is projective');
  assert.deepEqual(brightness(replay(0, 0.5), only({ maxLighting: 0.2, pLighting: 1 })), { brightness: 0 });
  assert.ok(Math.abs(contrast(replay(0, 1), only({ maxLighting: 0.2, pLighting: 1 }))!.contrast! - 1 / 0.8) < 1e-12);
});

test('issue 12: drawAugParams composes the pieces in order, image by image', () => {
  assert.deepEqual(COORD_AUGS, [randomResizedCrop, warp, flip, rotate, zoom]);
  assert.deepEqual(LIGHTING_AUGS, [brightness, contrast]);
  // Flip then a quarter turn: the product of the two matrices.
  const p = drawAugParams(1, replay(0.1, 0, 1), only({ doFlip: true, flipP: 0.5, maxRotate: 90, pAffine: 1 }));
  close(p.matrices, [0, 1, 0, 1, 0, 0, 0, 0, 1]);
  const none = drawAugParams(3, replay(), NO_AUG);
  close(none.matrices, [1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 1]);
  assert.deepEqual([...none.brightness, ...none.contrast], [0, 0, 0, 1, 1, 1]);
  // The defaults draw a fixed count per image, so a seed repeats a batch.
  let draws = 0;
  drawAugParams(2, () => { draws++; return 0; }, AUG_DEFAULTS);
  assert.equal(draws, 2 * (3 + 3 + 1 + 2 + 4 + 2 + 2));
});
