import assert from 'node:assert/strict';
import { test } from 'node:test';
import { alert, setLabel } from './logic.js';
import { parseFinite } from './number.js';

test('over capacity wins over out of range, and the bounds are inclusive', () => {
  assert.equal(alert({ min: 0, max: 100 }, 150, 120), 'over-capacity');
  assert.equal(alert({ min: 10, max: 100 }, 5, 120), 'out-of-range');
  assert.equal(alert({ min: 10, max: 100 }, 110, 120), 'out-of-range');
  assert.equal(alert({ min: 10, max: 100 }, 10, 120), undefined);
  assert.equal(alert({ min: 10, max: 100 }, 100, 120), undefined);
  assert.equal(alert({}, -5, 120), undefined);
});

test('an existing label is replaced in place, a new one goes last', () => {
  const labels = [['a', '1'], ['alert', 'old'], ['z', '2']];
  setLabel(labels, 'alert', 'new');
  assert.deepEqual(labels, [['a', '1'], ['alert', 'new'], ['z', '2']]);
  setLabel(labels, 'b', '3');
  assert.deepEqual(labels, [['a', '1'], ['alert', 'new'], ['z', '2'], ['b', '3']]);
});

test('bounds parse as Rust parses an f64, finite only', () => {
  assert.equal(parseFinite(' -3.5 '), -3.5);
  assert.throws(() => parseFinite('1,5'), (e) => e === '"1,5" is not a number (invalid float literal)');
  assert.throws(() => parseFinite('-inf'), (e) => e === '"-inf" is not a finite number');
});
