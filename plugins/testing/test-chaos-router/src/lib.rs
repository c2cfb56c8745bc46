//! Test plugin: a router that floods the host on request, so the integration tests can check the cap on
//! a router's answer. The manifest's `sink` names where events go; `mode` is `pass` (just that sink,
//! the default), `many-sinks` (that sink named 100 times) or `flood` (200,000 times).

use exports::plant_monitor::plugin::route::{ChangeEvent, Guest};
use plant_monitor::plugin::host;

wit_bindgen::generate!({
    world: "route-plugin",
    path: "../../../wit",
});

struct ChaosRouter;

impl Guest for ChaosRouter {
    fn route(_event: ChangeEvent) -> Result<Vec<String>, String> {
        let sink = host::config("sink").ok_or("chaos: no `sink` in the manifest")?;
        match host::config("mode").as_deref().unwrap_or("pass") {
            "pass" => Ok(vec![sink]),
            "many-sinks" => Ok(vec![sink; 100]),
            "flood" => Ok(vec![sink; 200_000]),
            other => Err(format!("chaos: unknown mode {other:?}")),
        }
    }
}

export!(ChaosRouter);
