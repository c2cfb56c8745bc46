// The decision of min-capacity-filter, free of the host's imports so that `node --test` can run it.

/**
 * Whether an event about `plant` (its `after` image, else `before`) passes at `min` megawatts. Every
 * event carries at least one image, but a missing one must not be mistaken for a small plant: keep
 * it and let later stages see it.
 */
export function keeps(plant, min) {
  return plant === undefined || plant.capacityMw >= min;
}
