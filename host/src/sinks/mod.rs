//! Sinks: where events are delivered. Each configured sink is an [`HttpSink`] with its own worker, so a
//! slow or dead sink never holds up another. `sink-echo`, the development receiver, lives here too.

mod cloudevent;
pub mod echo;
mod fenced;
mod health;
mod http;
mod response;
pub mod signing;
mod unrecorded;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use health::Probe;
pub use http::HttpSink;

use crate::config::SinkConfig;
use crate::lease::Leadership;
use crate::store::OutboxStore;

/// A sink that could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("sink {sink}: secret: {source}")]
    Secret {
        sink: String,
        source: signing::SecretError,
    },
    #[error("sink {sink}: cannot set up its HTTP client: {source}")]
    Client {
        sink: String,
        source: reqwest::Error,
    },
}

/// Every configured sink.
#[derive(Debug, Default)]
pub struct Sinks {
    sinks: Vec<Arc<HttpSink>>,
}

impl Sinks {
    pub fn build(configs: &BTreeMap<String, SinkConfig>) -> Result<Sinks, SinkError> {
        let sinks = configs
            .iter()
            .map(|(name, config)| HttpSink::new(name, config).map(Arc::new))
            .collect::<Result<_, _>>()?;
        Ok(Sinks { sinks })
    }

    pub fn names(&self) -> impl Iterator<Item = String> + '_ {
        self.sinks.iter().map(|sink| sink.name.clone())
    }

    /// Whether a sink of this name is configured.
    pub fn contains(&self, name: &str) -> bool {
        self.sinks.iter().any(|sink| sink.name == name)
    }

    /// Every configured sink, by name.
    pub fn iter(&self) -> impl Iterator<Item = &HttpSink> + '_ {
        self.sinks.iter().map(|sink| sink.as_ref())
    }

    /// Starts one delivery worker per sink, delivering the events of the regions this process leads
    /// (at once when `due` is told that deliveries were written, else every `poll`), and a health
    /// prober per sink with a `health_url`.
    pub fn spawn(
        &self,
        store: &Arc<dyn OutboxStore>,
        leadership: &Arc<Leadership>,
        poll: Duration,
        due: &watch::Receiver<()>,
        shutdown: &watch::Receiver<bool>,
    ) -> Vec<JoinHandle<()>> {
        self.sinks
            .iter()
            .flat_map(|sink| {
                let worker = sink.clone().run(
                    store.clone(),
                    leadership.clone(),
                    poll,
                    due.clone(),
                    shutdown.clone(),
                );
                [
                    tokio::spawn(worker),
                    tokio::spawn(sink.clone().probe(shutdown.clone())),
                ]
            })
            .collect()
    }
}
