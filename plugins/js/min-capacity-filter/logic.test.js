import assert from 'node:assert/strict';
import { test } from 'node:test';
import { keeps } from './logic.js';
import { debugString, parseFinite } from './number.js';

test('plants below the minimum are dropped and an event without images is kept', () => {
  assert.equal(keeps({ capacityMw: 50 }, 50), true);
  assert.equal(keeps({ capacityMw: 49.9 }, 50), false);
  assert.equal(keeps(undefined, 50), true);
});

test('numbers parse as Rust parses an f64, finite only', () => {
  for (const [raw, value] of [['50', 50], [' 50 ', 50], ['-3.5', -3.5], ['1e3', 1000], ['+.5', 0.5], ['5.', 5]]) {
    assert.equal(parseFinite(raw), value, raw);
  }
  for (const [raw, why] of [
    ['', '"" is not a number (cannot parse float from empty string)'],
    ['0x10', '"0x10" is not a number (invalid float literal)'],
    ['abc', '"abc" is not a number (invalid float literal)'],
    ['1,5', '"1,5" is not a number (invalid float literal)'],
    ['1_000', '"1_000" is not a number (invalid float literal)'],
    ['inf', '"inf" is not a finite number'],
    ['NaN', '"NaN" is not a finite number'],
    ['1e400', '"1e400" is not a finite number'],
  ]) {
    assert.throws(() => parseFinite(raw), (e) => e === why, raw);
  }
});

test('text is quoted as Rust quotes it with {:?}', () => {
  assert.equal(debugString('a"b\\c\n'), '"a\\"b\\\\c\\n"');
  assert.equal(debugString('ünï 日本 \u{1F600}'), '"ünï 日本 \u{1F600}"');
  assert.equal(debugString('\u0001\u00a0\u200b'), '"\\u{1}\\u{a0}\\u{200b}"');
});
