import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sinks } from './logic.js';

test('renewables go green, the rest to grid, and alerts also to alerts', () => {
  assert.deepEqual(sinks('wind', []), ['green']);
  assert.deepEqual(sinks('coal', [['size', 'large']]), ['grid']);
  assert.deepEqual(sinks('Solar', []), ['grid']);
  assert.deepEqual(sinks(undefined, []), ['grid']);
  assert.deepEqual(sinks('biomass', [['alert', 'over-capacity']]), ['green', 'alerts']);
});
