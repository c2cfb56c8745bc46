"""min-capacity-filter: keeps only events about plants whose nameplate capacity is at least the
manifest's `min_capacity_mw` (a missing key means 0, so everything is kept), judging the plant by
its `after` image, or its `before` image when the plant was deleted. The Python port of
plugins/examples/min-capacity-filter: the same answers, logs and error messages.
"""

import functools

from componentize_py_types import Err, Ok, Result
from wit_world import exports
from wit_world.imports import host, types

from logic import keeps, parse_finite, quoted

# The config key this plugin reads.
KEY = "min_capacity_mw"


class Filter(exports.Filter):
    def keep(self, event: types.ChangeEvent) -> bool:
        minimum = _min_capacity_mw()
        if isinstance(minimum, Err):
            raise Err(minimum.value)
        plant = event.after if event.after is not None else event.before
        return keeps(None if plant is None else plant.capacity_mw, minimum.value)


@functools.cache
def _min_capacity_mw() -> Result[float, str]:
    """The threshold, read once: the instance is reused for many events and its manifest cannot
    change under it (a changed manifest means a new instance). A bad value is kept too, so every
    event reports the same error instead of only the first."""
    raw = host.config(KEY)
    if raw is None:
        host.log(host.Level.DEBUG, f"{KEY} not set: keeping every plant")
        return Ok(0.0)
    host.log(host.Level.DEBUG, f"keeping plants with capacity_mw >= {quoted(raw)}")
    try:
        return Ok(parse_finite(KEY, raw))
    except ValueError as error:
        return Err(str(error))
