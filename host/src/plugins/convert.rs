//! Between the host's [`Event`] and the WIT `change-event`. Going out cannot fail; coming back from an
//! enricher it can, because a guest may return any string where the host expects a fuel or a status.

use crate::pipeline::Event;
use crate::store::{ChangeKind, Fuel, Plant, Status};

use super::bindings::{self, ChangeEvent, PowerPlant};

pub fn to_wit(event: &Event) -> ChangeEvent {
    ChangeEvent {
        seq: event.seq,
        kind: match event.kind {
            ChangeKind::Created => bindings::ChangeKind::Created,
            ChangeKind::Updated => bindings::ChangeKind::Updated,
            ChangeKind::Deleted => bindings::ChangeKind::Deleted,
            ChangeKind::Snapshot => bindings::ChangeKind::Snapshot,
        },
        plant_id: event.plant_id.clone(),
        region: event.region.clone(),
        before: event.before.as_ref().map(plant_to_wit),
        after: event.after.as_ref().map(plant_to_wit),
        changed_fields: event.changed_fields.clone(),
        committed_at: event.committed_at.clone(),
        labels: pairs(&event.labels),
    }
}

/// Reads an enricher's answer; `Err` says what in it is not a valid event.
pub fn from_wit(event: ChangeEvent) -> Result<Event, String> {
    Ok(Event {
        seq: event.seq,
        kind: match event.kind {
            bindings::ChangeKind::Created => ChangeKind::Created,
            bindings::ChangeKind::Updated => ChangeKind::Updated,
            bindings::ChangeKind::Deleted => ChangeKind::Deleted,
            bindings::ChangeKind::Snapshot => ChangeKind::Snapshot,
        },
        plant_id: event.plant_id,
        region: event.region,
        before: event
            .before
            .map(|p| plant_from_wit(p, "before"))
            .transpose()?,
        after: event
            .after
            .map(|p| plant_from_wit(p, "after"))
            .transpose()?,
        changed_fields: event.changed_fields,
        committed_at: event.committed_at,
        labels: event.labels.into_iter().collect(),
    })
}

fn pairs(map: &std::collections::BTreeMap<String, String>) -> Vec<(String, String)> {
    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn plant_to_wit(plant: &Plant) -> PowerPlant {
    PowerPlant {
        id: plant.id.clone(),
        name: plant.name.clone(),
        region: plant.region.clone(),
        fuel: plant.fuel.as_str().to_owned(),
        capacity_mw: plant.capacity_mw,
        output_mw: plant.output_mw,
        status: plant.status.as_str().to_owned(),
        latitude: plant.latitude,
        longitude: plant.longitude,
        attributes: pairs(&plant.attributes),
        version: plant.version,
        created_at: plant.created_at.clone(),
        updated_at: plant.updated_at.clone(),
    }
}

fn plant_from_wit(plant: PowerPlant, image: &str) -> Result<Plant, String> {
    Ok(Plant {
        fuel: Fuel::parse(&plant.fuel).ok_or_else(|| {
            format!(
                "{image}.fuel {:?} is not one of {}",
                plant.fuel,
                Fuel::ALL.join(", ")
            )
        })?,
        status: Status::parse(&plant.status).ok_or_else(|| {
            format!(
                "{image}.status {:?} is not one of {}",
                plant.status,
                Status::ALL.join(", ")
            )
        })?,
        id: plant.id,
        name: plant.name,
        region: plant.region,
        capacity_mw: plant.capacity_mw,
        output_mw: plant.output_mw,
        latitude: plant.latitude,
        longitude: plant.longitude,
        attributes: plant.attributes.into_iter().collect(),
        version: plant.version,
        created_at: plant.created_at,
        updated_at: plant.updated_at,
    })
}
