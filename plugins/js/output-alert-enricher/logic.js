// The decisions of output-alert-enricher, free of the host's imports so that `node --test` can run them.

/** The label key this plugin owns; routers (such as `fuel-router`) look for it. */
export const ALERT = 'alert';

/**
 * The alert for `output` megawatts from a plant of `capacity` within `{ min, max }` (inclusive, each
 * optional), or undefined. Over capacity wins over out of range: it is the more specific, more
 * urgent fact.
 */
export function alert({ min, max }, output, capacity) {
  if (output > capacity) return 'over-capacity';
  if ((min !== undefined && output < min) || (max !== undefined && output > max)) return 'out-of-range';
  return undefined;
}

/**
 * Replaces the value of an existing label (the first of that key) rather than adding a second one:
 * sinks receive labels as a JSON object, where a duplicate key would silently keep only one value.
 */
export function setLabel(labels, key, value) {
  const label = labels.find(([k]) => k === key);
  if (label === undefined) labels.push([key, value]);
  else label[1] = value;
}
