// output-alert-enricher in JavaScript: the same answers, logs and errors as the Rust example in
// plugins/examples/output-alert-enricher. Labels an event `alert=over-capacity` when the plant's latest
// output exceeds its nameplate capacity, or `alert=out-of-range` when the output falls outside the
// manifest's optional `min_output_mw`..`max_output_mw` bounds. Events without an `after` image or
// without an output reading pass through untouched.

import { config, log } from 'plant-monitor:plugin/host@0.1.0';
import { ALERT, alert, setLabel } from './logic.js';
import { debugString, parseFinite } from './number.js';

/**
 * The bounds as `{ min, max }` (each undefined when unset) or `{ error }`, read on the first event:
 * the manifest cannot change under a live instance, and a bad value is kept as well so every event
 * reports it, not just the first.
 */
let bounds;

function readBounds() {
  try {
    // In this order, and the maximum is not read once the minimum failed, as in Rust.
    const min = readNumber('min_output_mw');
    return { min, max: readNumber('max_output_mw') };
  } catch (error) {
    return { error };
  }
}

/** An optional finite number from the manifest's `[config]` table; throws the plugin error. */
function readNumber(key) {
  const raw = config(key);
  if (raw === undefined) {
    log('debug', `${key} not set: no bound`);
    return undefined;
  }
  log('debug', `${key} = ${debugString(raw)}`);
  try {
    return parseFinite(raw);
  } catch (why) {
    throw `${key}: ${why}`;
  }
}

export const enrich = {
  enrich(event) {
    bounds ??= readBounds();
    if (bounds.error !== undefined) throw bounds.error;
    const plant = event.after;
    const label = plant?.outputMw === undefined ? undefined : alert(bounds, plant.outputMw, plant.capacityMw);
    if (label !== undefined) setLabel(event.labels, ALERT, label);
    return event;
  },
};
