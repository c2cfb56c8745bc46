"""The decisions of fuel-router, apart from the component bindings so that `python3 -m unittest` can
test them on this machine."""

# Fuels counted as renewable, as spelled in the registry.
GREEN_FUELS = ("solar", "wind", "hydro", "geothermal", "biomass")


def sinks(fuel: str | None, labels: list[tuple[str, str]]) -> list[str]:
    """`green` for a renewable fuel, else `grid` (also for None: no image), then `alerts` when an
    enricher has set an `alert` label."""
    answer = ["green" if fuel in GREEN_FUELS else "grid"]
    if any(key == "alert" for key, _ in labels):
        answer.append("alerts")
    return answer
