//! Example route plugin: sends events about renewable plants (solar, wind, hydro, geothermal,
//! biomass) to the sink named `green` and every other plant to `grid`, and additionally to `alerts`
//! when an enricher has set an `alert` label. All three must be configured sinks, because the host
//! treats an unknown sink name as a plugin error.

use exports::plant_monitor::plugin::route::{ChangeEvent, Guest};

wit_bindgen::generate!({
    world: "route-plugin",
    path: "../../../wit",
});

/// Fuels counted as renewable, as spelled in the registry.
const GREEN_FUELS: [&str; 5] = ["solar", "wind", "hydro", "geothermal", "biomass"];

struct FuelRouter;

impl Guest for FuelRouter {
    fn route(event: ChangeEvent) -> Result<Vec<String>, String> {
        // A deleted plant has only its `before` image, and its deletion still matters downstream.
        let fuel = event
            .after
            .as_ref()
            .or(event.before.as_ref())
            .map(|plant| plant.fuel.as_str());
        let green = fuel.is_some_and(|fuel| GREEN_FUELS.contains(&fuel));
        let mut sinks = vec![if green { "green" } else { "grid" }];
        if event.labels.iter().any(|(key, _)| key == "alert") {
            sinks.push("alerts");
        }
        Ok(sinks.into_iter().map(String::from).collect())
    }
}

export!(FuelRouter);
