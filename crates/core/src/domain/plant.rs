//! Plants: what the registry keeps, the drafts clients write, and the rule a region name follows. They
//! serialize exactly as the public contract shows them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

crate::word_enum! {
    /// The kinds of generating plant the registry knows.
    pub enum Fuel {
        Solar => "solar", Wind => "wind", Hydro => "hydro", Nuclear => "nuclear", Coal => "coal",
        Gas => "gas", Oil => "oil", Biomass => "biomass", Geothermal => "geothermal",
        Storage => "storage", Other => "other",
    }
}

crate::word_enum! {
    /// Where a plant is in its life; new plants are `planned` unless told otherwise.
    #[derive(Default)]
    pub enum Status {
        #[default]
        Planned => "planned", Operational => "operational", Maintenance => "maintenance",
        Offline => "offline", Decommissioned => "decommissioned",
    }
}

/// The fields a client may write; validated before it reaches the store.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlantDraft {
    pub name: String,
    pub region: String,
    pub fuel: Fuel,
    pub capacity_mw: f64,
    pub output_mw: Option<f64>,
    pub status: Status,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub attributes: BTreeMap<String, String>,
}

impl PlantDraft {
    /// The plant this draft is once the server has given it its id, version and timestamps.
    pub fn into_plant(
        self,
        id: String,
        version: u64,
        created_at: String,
        updated_at: String,
    ) -> Plant {
        Plant {
            id,
            name: self.name,
            region: self.region,
            fuel: self.fuel,
            capacity_mw: self.capacity_mw,
            output_mw: self.output_mw,
            status: self.status,
            latitude: self.latitude,
            longitude: self.longitude,
            attributes: self.attributes,
            version,
            created_at,
            updated_at,
        }
    }
}

/// A plant as stored: the draft plus what the server owns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Plant {
    pub id: String,
    pub name: String,
    pub region: String,
    pub fuel: Fuel,
    pub capacity_mw: f64,
    pub output_mw: Option<f64>,
    pub status: Status,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub attributes: BTreeMap<String, String>,
    pub version: u64,
    pub created_at: String,
    pub updated_at: String,
}

impl Plant {
    /// The writable part, e.g. as the base a merge patch applies to.
    pub fn draft(&self) -> PlantDraft {
        PlantDraft {
            name: self.name.clone(),
            region: self.region.clone(),
            fuel: self.fuel,
            capacity_mw: self.capacity_mw,
            output_mw: self.output_mw,
            status: self.status,
            latitude: self.latitude,
            longitude: self.longitude,
            attributes: self.attributes.clone(),
        }
    }
}

/// Whether `text` is a region name, `^[a-z0-9][a-z0-9-]{0,62}$`, checked without a regex engine.
pub fn is_region(text: &str) -> bool {
    let bytes = text.as_bytes();
    let allowed = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    (1..=63).contains(&bytes.len())
        && allowed(&bytes[0])
        && bytes[1..].iter().all(|b| allowed(b) || *b == b'-')
}
