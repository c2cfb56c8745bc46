//! An HTTP receiver that notes, for every event it gets, which path it came to, whose plant it was,
//! the kind and version of the change, and when it arrived; from a sink (one event or a JSON array of
//! them) and from the naive poller alike (one row per request).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::http::{StatusCode, Uri};
use serde_json::Value;

/// One event as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub plant_id: String,
    pub kind: String,
    pub version: i64,
    pub at: Instant,
}

/// Everything received so far, and the plants it was about.
#[derive(Debug, Clone, Default)]
pub struct Recorder(Arc<Mutex<State>>);

#[derive(Debug, Default)]
struct State {
    all: Vec<Received>,
    plants: HashSet<String>,
}

impl Recorder {
    pub async fn start(&self) -> anyhow::Result<std::net::SocketAddr> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let recorder = self.clone();
        let app = Router::new().fallback(move |uri: Uri, body: axum::body::Bytes| {
            let recorder = recorder.clone();
            async move {
                let at = Instant::now();
                let events = match serde_json::from_slice::<Value>(&body) {
                    Ok(Value::Array(events)) => events,
                    Ok(event) => vec![event],
                    Err(_) => return StatusCode::BAD_REQUEST,
                };
                // A sink's body is a CloudEvent around the event; the poller's is the row itself.
                let received = events
                    .iter()
                    .map(|body| body.get("data").unwrap_or(body))
                    .map(|event| Received {
                        path: uri.path().to_owned(),
                        plant_id: event["plant_id"].as_str().unwrap_or_default().to_owned(),
                        kind: event["kind"].as_str().unwrap_or_default().to_owned(),
                        // A sink's event carries the images; the poller's row its own version.
                        version: [
                            &event["after"]["version"],
                            &event["before"]["version"],
                            &event["version"],
                        ]
                        .into_iter()
                        .find_map(Value::as_i64)
                        .unwrap_or_default(),
                        at,
                    });
                match recorder.0.lock() {
                    Ok(mut state) => {
                        for event in received {
                            state.plants.insert(event.plant_id.clone());
                            state.all.push(event);
                        }
                        StatusCode::NO_CONTENT
                    }
                    Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
                }
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(address)
    }

    /// What has arrived so far.
    pub fn received(&self) -> anyhow::Result<Vec<Received>> {
        Ok(self
            .0
            .lock()
            .map_err(|_| anyhow::anyhow!("the receiver panicked"))?
            .all
            .clone())
    }

    /// Forgets what has arrived so far.
    pub fn clear(&self) -> anyhow::Result<()> {
        let mut state = (self.0.lock()).map_err(|_| anyhow::anyhow!("the receiver panicked"))?;
        *state = State::default();
        Ok(())
    }

    /// How many plants something has arrived about so far.
    pub fn plants(&self) -> anyhow::Result<usize> {
        Ok(self
            .0
            .lock()
            .map_err(|_| anyhow::anyhow!("the receiver panicked"))?
            .plants
            .len())
    }
}
