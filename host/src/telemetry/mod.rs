//! What the process tells its operators about itself: log lines ([`logs`]) and the Prometheus
//! metrics served at `GET /metrics` ([`metrics`]).

pub mod logs;
pub mod metrics;

pub use logs::init;
