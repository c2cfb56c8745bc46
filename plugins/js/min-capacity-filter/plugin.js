// min-capacity-filter in JavaScript: the same answers, logs and errors as the Rust example in
// plugins/examples/min-capacity-filter. Keeps only events about plants whose nameplate capacity is at
// least the manifest's `min_capacity_mw` (a missing key means 0, so everything is kept), judging the
// plant by its `after` image, or its `before` image when the plant was deleted.

import { config, log } from 'plant-monitor:plugin/host@0.1.0';
import { keeps } from './logic.js';
import { debugString, parseFinite } from './number.js';

/** The config key this plugin reads. */
const KEY = 'min_capacity_mw';

/**
 * The threshold as `{ value }` or `{ error }`, read on the first event: the instance is reused for
 * many events and its manifest cannot change under it (a changed manifest means a new instance). A
 * bad value is kept too, so every event reports the same error instead of only the first.
 */
let threshold;

function readThreshold() {
  const raw = config(KEY);
  if (raw === undefined) {
    log('debug', `${KEY} not set: keeping every plant`);
    return { value: 0 };
  }
  log('debug', `keeping plants with capacity_mw >= ${debugString(raw)}`);
  try {
    return { value: parseFinite(raw) };
  } catch (why) {
    return { error: `${KEY}: ${why}` };
  }
}

export const filter = {
  keep(event) {
    threshold ??= readThreshold();
    if (threshold.error !== undefined) throw threshold.error;
    return keeps(event.after ?? event.before, threshold.value);
  },
};
