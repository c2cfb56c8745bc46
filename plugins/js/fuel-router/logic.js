// The decision of fuel-router, free of the host's imports so that `node --test` can run it.

/** Fuels counted as renewable, as spelled in the registry. */
const GREEN_FUELS = ['solar', 'wind', 'hydro', 'geothermal', 'biomass'];

/** The sinks for a plant of `fuel` (undefined: no image) with `labels` ([key, value] pairs). */
export function sinks(fuel, labels) {
  const chosen = [GREEN_FUELS.includes(fuel) ? 'green' : 'grid'];
  if (labels.some(([key]) => key === 'alert')) chosen.push('alerts');
  return chosen;
}
