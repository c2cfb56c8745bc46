// fuel-router in JavaScript: the same answers as the Rust example in plugins/examples/fuel-router.
// Sends events about renewable plants (solar, wind, hydro, geothermal, biomass) to the sink named
// `green` and every other plant to `grid`, and additionally to `alerts` when an enricher has set an
// `alert` label. All three must be configured sinks, because the host treats an unknown sink name as a
// plugin error.

import { sinks } from './logic.js';

export const route = {
  route(event) {
    // A deleted plant has only its `before` image, and its deletion still matters downstream.
    return sinks((event.after ?? event.before)?.fuel, event.labels);
  },
};
