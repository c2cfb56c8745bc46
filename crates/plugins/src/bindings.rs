//! The one `bindgen!` site. The host binds a world of its own that imports `host` and exports all three
//! roles, so there is a single set of Rust types; each component is then checked for the roles it
//! actually exports and only those are loaded.

// The generated code spells paths out in full and derives no Debug.
#![allow(unused_qualifications, missing_debug_implementations)]

wasmtime::component::bindgen!({
    path: "../../wit",
    inline: "
        package plant-monitor:host-side;

        world any-plugin {
            import plant-monitor:plugin/host@0.1.0;
            export plant-monitor:plugin/filter@0.1.0;
            export plant-monitor:plugin/enrich@0.1.0;
            export plant-monitor:plugin/route@0.1.0;
        }
    ",
    world: "any-plugin",
    // Events are passed by reference: lowering reads the host's strings in place instead of a deep copy
    // per call. The enricher's answer is owned, hence the duplicated `…Param`/`…Result` types.
    ownership: Borrowing {
        duplicate_if_necessary: true
    },
});

pub use exports::plant_monitor::plugin::{enrich, filter, route};
pub use plant_monitor::plugin::host::{Host, Level};
pub use plant_monitor::plugin::types::{
    ChangeEventParam, ChangeEventResult, ChangeKind, PowerPlantParam, PowerPlantResult,
};
