// Which tensors' bytes V8 is told of. In a file of its own, so that no other test's forgotten
// handles are collected (and subtracted from the count) while it reads the count.
import test from 'node:test';
import assert from 'node:assert/strict';
import { keep, memory, tidy, zeros } from '../../src/torch/index.js';

const MB = 1024 * 1024;

test('V8 hears of a tensor\'s bytes only once it is outside every tidy() scope', () => {
  const base = memory().unscopedBytes;
  const reported = (): number => (memory().unscopedBytes - base) / MB;
  let inside = -1;
  const returned = tidy(() => {
    const scratch = zeros([1024, 1024]);
    inside = reported();
    keep(zeros([1024, 1024]).add(scratch));
    return zeros([1024, 1024]);
  });
  assert.equal(inside, 0, 'a tensor inside a scope was reported');
  // The kept one and the returned one, 4 MB each, are the garbage collector's to free now.
  assert.equal(reported(), 8);
  const outside = zeros([1024, 1024]);
  assert.equal(reported(), 12, 'a tensor made outside any scope');
  tidy(() => {
    tidy(() => zeros([1024, 1024]));
    assert.equal(reported(), 12, 'returned from an inner scope into an outer one');
  });
  assert.equal(reported(), 12, 'freed with the outer scope');
  for (const t of [returned, outside]) t.dispose();
  assert.equal(reported(), 4, 'disposing takes the bytes back');
});
