//! Between the host's [`Event`] and the WIT `change-event`. Going out borrows and cannot fail; coming back
//! from an enricher it can, because a guest may return any string where the host expects a fuel or a status.

use plant_monitor_core::domain::{ChangeKind, Event, Fuel, Plant, Status};

use std::collections::BTreeMap;

use super::bindings::{
    self, ChangeEventParam, ChangeEventResult, PowerPlantParam, PowerPlantResult,
};

/// An event as the WIT parameter borrows it: the strings are the event's own; only the lists of
/// references the parameter's slices point into are built here.
pub struct Borrowed<'a> {
    event: &'a Event,
    changed_fields: Vec<&'a str>,
    labels: Vec<(&'a str, &'a str)>,
    before: Vec<(&'a str, &'a str)>,
    after: Vec<(&'a str, &'a str)>,
}

impl<'a> Borrowed<'a> {
    pub fn new(event: &'a Event) -> Self {
        let pairs =
            |plant: Option<&'a Plant>| plant.map(|p| pairs_of(&p.attributes)).unwrap_or_default();
        Borrowed {
            event,
            changed_fields: event.changed_fields.iter().map(String::as_str).collect(),
            labels: pairs_of(&event.labels),
            before: pairs(event.before.as_ref()),
            after: pairs(event.after.as_ref()),
        }
    }

    pub fn param(&self) -> ChangeEventParam<'_> {
        let event = self.event;
        ChangeEventParam {
            seq: event.seq,
            kind: match event.kind {
                ChangeKind::Created => bindings::ChangeKind::Created,
                ChangeKind::Updated => bindings::ChangeKind::Updated,
                ChangeKind::Deleted => bindings::ChangeKind::Deleted,
                ChangeKind::Snapshot => bindings::ChangeKind::Snapshot,
            },
            plant_id: &event.plant_id,
            region: &event.region,
            before: event.before.as_ref().map(|p| plant_param(p, &self.before)),
            after: event.after.as_ref().map(|p| plant_param(p, &self.after)),
            changed_fields: &self.changed_fields,
            committed_at: &event.committed_at,
            labels: &self.labels,
        }
    }
}

fn pairs_of(map: &BTreeMap<String, String>) -> Vec<(&str, &str)> {
    map.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

fn plant_param<'a>(plant: &'a Plant, attributes: &'a [(&'a str, &'a str)]) -> PowerPlantParam<'a> {
    PowerPlantParam {
        id: &plant.id,
        name: &plant.name,
        region: &plant.region,
        fuel: plant.fuel.as_str(),
        capacity_mw: plant.capacity_mw,
        output_mw: plant.output_mw,
        status: plant.status.as_str(),
        latitude: plant.latitude,
        longitude: plant.longitude,
        attributes,
        version: plant.version,
        created_at: &plant.created_at,
        updated_at: &plant.updated_at,
    }
}

/// Reads an enricher's answer; `Err` says what in it is not a valid event.
pub fn from_wit(event: ChangeEventResult) -> Result<Event, String> {
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

fn plant_from_wit(plant: PowerPlantResult, image: &str) -> Result<Plant, String> {
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
