"""fuel-router: sends events about renewable plants (solar, wind, hydro, geothermal, biomass) to the
sink named `green` and every other plant to `grid`, and additionally to `alerts` when an enricher
has set an `alert` label. All three must be configured sinks, because the host treats an unknown
sink name as a plugin error. The Python port of plugins/examples/fuel-router: the same sinks in the
same order.
"""

from wit_world import exports
from wit_world.imports import types

from logic import sinks


class Route(exports.Route):
    def route(self, event: types.ChangeEvent) -> list[str]:
        # A deleted plant has only its `before` image, and its deletion still matters downstream.
        plant = event.after if event.after is not None else event.before
        return sinks(None if plant is None else plant.fuel, event.labels)
