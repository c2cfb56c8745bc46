"""output-alert-enricher: labels an event `alert=over-capacity` when the plant's latest output
exceeds its nameplate capacity, or `alert=out-of-range` when the output falls outside the
manifest's optional `min_output_mw`..`max_output_mw` bounds. Events without an `after` image or
without an output reading pass through untouched. The Python port of
plugins/examples/output-alert-enricher: the same labels, logs and error messages.
"""

import functools

from componentize_py_types import Err, Ok, Result
from wit_world import exports
from wit_world.imports import host, types

from logic import alert, parse_finite, quoted, set_label

# The label key this plugin owns; routers (such as `fuel-router`) look for it.
ALERT = "alert"


class Enrich(exports.Enrich):
    def enrich(self, event: types.ChangeEvent) -> types.ChangeEvent:
        bounds = _bounds()
        if isinstance(bounds, Err):
            raise Err(bounds.value)
        minimum, maximum = bounds.value
        plant = event.after
        if plant is not None and plant.output_mw is not None:
            label = alert(plant.output_mw, plant.capacity_mw, minimum, maximum)
            if label is not None:
                set_label(event.labels, ALERT, label)
        return event


@functools.cache
def _bounds() -> Result[tuple[float | None, float | None], str]:
    """The optional bounds (min, max), read once per instance: the manifest cannot change under a
    live instance, and a bad value is kept as well so every event reports it, not just the first."""
    try:
        return Ok((_read_number("min_output_mw"), _read_number("max_output_mw")))
    except ValueError as error:
        return Err(str(error))


def _read_number(key: str) -> float | None:
    """An optional finite number from the manifest's `[config]` table."""
    raw = host.config(key)
    if raw is None:
        host.log(host.Level.DEBUG, f"{key} not set: no bound")
        return None
    host.log(host.Level.DEBUG, f"{key} = {quoted(raw)}")
    return parse_finite(key, raw)
