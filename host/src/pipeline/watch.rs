//! Watches the plugin folder (inotify through `notify`) and puts a new pipeline in force when what it
//! holds changes. Events are debounced: a file being written is read once writes to it have paused for
//! `plugins.watch_debounce`, and at once when its writer closes it or it is renamed into place (how
//! an atomic write, `cp` and a Kubernetes ConfigMap update end). Every replica watches its own folder.
//! Where the folder cannot be watched (it does not exist yet, or inotify is out of watches) it is read
//! again every few seconds instead.
//!
//! New versions compile on threads of their own, each logging its progress while it takes long; the
//! pipeline in force (with the version before, if any) runs on meanwhile and `/v1/plugins` lists the
//! file as compiling.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::{Compiled, Folder, Job, LivePipeline, Pipeline};

/// How long events are gathered after a file is closed, renamed or removed: one burst (a manifest and
/// its component renamed together), one reading.
const SETTLE: Duration = Duration::from_millis(1);

/// How often an unwatchable folder is read again.
const POLL: Duration = Duration::from_secs(2);

/// How often new versions on probation are judged: the feed waits this long at most for a rollback.
const REVIEW: Duration = Duration::from_millis(5);

/// A compile taking longer than this is logged as it goes, every `PROGRESS`: a JavaScript or Python
/// component takes 10–25 s on two cores, a cached or Rust one milliseconds.
const PROGRESS: Duration = Duration::from_secs(5);

/// Keeps the pipeline in force up to date with the plugin folder.
#[derive(Debug)]
pub struct Watcher {
    pub folder: Folder,
    pub live: Arc<LivePipeline>,
    pub debounce: Duration,
}

impl Watcher {
    /// Watches until `shutdown` turns true.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let (events, mut changes) = mpsc::unbounded_channel();
        let watching = match watch(&self.folder, events) {
            Ok(watcher) => Some(watcher),
            Err(error) => {
                tracing::warn!(dir = %self.folder.dir().display(), %error, every = ?POLL, "Cannot watch the plugin folder; reading it again periodically instead.");
                None
            }
        };
        let folder = Arc::new(Mutex::new(self.folder));
        let (compiled_tx, mut compiled) = mpsc::unbounded_channel();
        let mut due: Option<Instant> = None;
        loop {
            let settled = async {
                match due {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                change = changes.recv() => match change {
                    Some(settle) => due = Some(Instant::now() + settle.unwrap_or(self.debounce)),
                    None => return,
                },
                () = settled => {
                    due = None;
                    scan(&folder, &self.live, &compiled_tx).await;
                }
                () = tokio::time::sleep(POLL), if watching.is_none() => {
                    scan(&folder, &self.live, &compiled_tx).await;
                }
                Some(done) = compiled.recv() => {
                    refresh(&folder, &self.live, move |folder| folder.install(done)).await;
                }
                () = tokio::time::sleep(REVIEW), if self.live.load().on_probation() => {
                    refresh(&folder, &self.live, Folder::review).await;
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// Starts watching the folder; each relevant event sends how long to let it settle (`None`: the
/// debounce, for a file still being written).
fn watch(
    folder: &Folder,
    events: mpsc::UnboundedSender<Option<Duration>>,
) -> notify::Result<RecommendedWatcher> {
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let settle = match event.map(|event| event.kind) {
            Ok(
                EventKind::Access(AccessKind::Close(AccessMode::Write))
                | EventKind::Modify(ModifyKind::Name(_))
                | EventKind::Remove(_),
            ) => Some(SETTLE),
            Ok(EventKind::Create(_) | EventKind::Modify(_) | EventKind::Any) => None,
            Ok(EventKind::Access(_) | EventKind::Other) => return,
            // Events may have been lost (the queue overflowed): read the folder to be sure.
            Err(_) => Some(SETTLE),
        };
        let _ = events.send(settle);
    })?;
    watcher.watch(folder.dir(), RecursiveMode::NonRecursive)?;
    Ok(watcher)
}

/// Reads the folder, puts the pipeline showing what changed in force, and starts compiling each new
/// version; each sends its result to `compiled` when done.
async fn scan(
    folder: &Arc<Mutex<Folder>>,
    live: &LivePipeline,
    compiled: &mpsc::UnboundedSender<Compiled>,
) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    refresh(folder, live, move |folder| {
        let (pipeline, jobs) = folder.scan();
        let _ = tx.send(jobs);
        pipeline
    })
    .await;
    for job in rx.await.unwrap_or_default() {
        tokio::spawn(compile(job, compiled.clone()));
    }
}

/// Compiles one new version on a blocking thread, logging its progress while it takes long.
async fn compile(job: Job, done: mpsc::UnboundedSender<Compiled>) {
    let name = job.name().to_owned();
    let started = Instant::now();
    let mut compiling = tokio::task::spawn_blocking(move || job.compile());
    let mut progress = tokio::time::interval_at(started + PROGRESS, PROGRESS);
    let result = loop {
        tokio::select! {
            result = &mut compiling => break result,
            _ = progress.tick() => tracing::info!(
                plugin = name,
                seconds = started.elapsed().as_secs(),
                "Still compiling a plugin; the version before it, if any, runs meanwhile."
            ),
        }
    };
    match result {
        Ok(compiled) => {
            let _ = done.send(compiled);
        }
        Err(error) => tracing::error!(plugin = name, %error, "Compiling a plugin failed."),
    }
}

/// Runs `step` (reading the folder, putting a compiled version in place, or judging the versions on
/// probation) on a blocking thread and puts the new pipeline, if any, in force.
async fn refresh(
    folder: &Arc<Mutex<Folder>>,
    live: &LivePipeline,
    step: impl FnOnce(&mut Folder) -> Option<Pipeline> + Send + 'static,
) {
    let folder = folder.clone();
    let read = tokio::task::spawn_blocking(move || {
        step(
            &mut folder
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    })
    .await;
    match read {
        Ok(Some(pipeline)) => {
            tracing::info!(
                pipeline = pipeline.id(),
                plugins = pipeline.plugins().len(),
                refused = pipeline.refused().len(),
                "A new pipeline is in force."
            );
            live.store(Arc::new(pipeline));
        }
        Ok(None) => {}
        Err(error) => {
            tracing::error!(%error, "Reading the plugin folder failed; the pipeline in force runs on.")
        }
    }
}
