//! The bottom layers of plant-monitor, in a crate of their own so that every layer above can share them
//! and none of them can reach up: [`domain`], the plants, changes and events every layer speaks of,
//! and [`config`], the validated configuration every part is built from.

// Product code handles every failure; tests may unwrap (see clippy.toml).
#![warn(clippy::unwrap_used)]

pub mod config;
pub mod domain;
