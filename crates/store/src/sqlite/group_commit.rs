//! Group commit of this process's writes on SQLite. SQLite lets one writer in at a time and every
//! commit waits for the disk, so writers that each commit alone queue on the lock (its busy handler
//! sleeps, 1 ms at first and up to 100 ms after a few misses) and on the sync. Here the writes queue in
//! memory instead, and one task commits whatever has queued in one transaction: the API's plant writes
//! and the records of the feed and the sinks ([`Work`]). Each runs inside a savepoint of its own, so
//! one that fails (a CHECK violation, a version that no longer matches, a missing plant, a fence that
//! no longer holds) is undone alone and answered with its own error while the others commit. Every
//! write is answered only once the commit holding it has returned, so nothing is acknowledged before
//! it is durable; a group whose transaction fails fails every write in it. The process thus meets
//! SQLite's lock once per group, and the busy handler only when another process holds it. At most
//! [`QUEUE`] writes wait; one that finds the queue full waits for room, it is never dropped.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

use super::checkpoint::{Checkpointer, Checkpoints};
use super::plants::PlantWrite;
use super::watch::OwnWrites;
use crate::StoreError;
use crate::signal::Written;
use plant_monitor_core::domain::{Plant, TraceParent};

/// How many writes may wait for the writer task.
const QUEUE: usize = 1024;

/// How many writes one transaction takes at most, which bounds how long it holds the write lock from
/// other processes on the file.
const GROUP_MAX: usize = 256;

/// What a write comes to: the plant as written (none for a delete), or why not.
type Outcome = Result<Option<Plant>, StoreError>;

/// Statements another part of the store runs in the writer's transaction, inside a savepoint of
/// their own: an error undoes them alone. The work is handed the statements that release the
/// savepoint before it and take its own, to run at the head of its first query (one round trip to
/// the connection's thread fewer); it must run them, whatever else it runs.
pub(super) type Work = Box<
    dyn for<'c> FnOnce(
            &'c mut SqliteConnection,
            String,
        ) -> Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + 'c>>
        + Send,
>;

/// A write waiting for its group.
struct Queued {
    job: Job,
    reply: oneshot::Sender<Outcome>,
}

enum Job {
    Plant {
        write: PlantWrite,
        trace: Option<String>,
    },
    Work(Work),
    /// The end of the writer task.
    Close,
}

/// The way into the writer task's queue. The task ends on [`GroupCommit::close`], or once every
/// clone of this is gone.
#[derive(Debug, Clone)]
pub(super) struct GroupCommit {
    queue: mpsc::Sender<Queued>,
    state: Arc<AtomicU8>,
}

/// What the writer's connection is doing, for [`GroupCommit::connection`].
const CLOSED: u8 = 0;
const IDLE: u8 = 1;
const WRITING: u8 = 2;

impl GroupCommit {
    /// Starts the writer task on `conn`, a connection of its own that it keeps between groups (a
    /// pool's checks on every release and acquisition were two round trips to the connection's
    /// thread per group), and opens again with `options` after one is lost. Every commit is
    /// announced on `written`, and each group counted in `own` while it runs. The log is
    /// checkpointed by `checkpointer` if there is one (its connection made with its
    /// [`Checkpointer::writer_options`]), else by the writer's commits, as SQLite does by default.
    ///
    /// The task runs on a thread of its own. Each write is a round trip to the connection's thread,
    /// and on the shared runtime the task's wake-up after each one queued behind the requests the
    /// runtime's workers were serving, while the connection's thread, the one every write waits
    /// for, sat idle; on its own thread the operating system wakes it at once (API POSTs on
    /// SQLite +10 % over 14 alternating pairs, see BENCHMARKS).
    pub(super) fn start(
        conn: SqliteConnection,
        options: SqliteConnectOptions,
        written: Written,
        own: OwnWrites,
        checkpointer: Option<Checkpointer>,
    ) -> std::io::Result<GroupCommit> {
        let (queue, writes) = mpsc::channel(QUEUE);
        let state = Arc::new(AtomicU8::new(IDLE));
        let mut writer = Writer {
            options,
            conn: Some(conn),
            state: state.clone(),
            own,
            checkpoints: None,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                runtime.block_on(async move {
                    // Its task runs on this thread's runtime, which the writer's close ends.
                    writer.checkpoints = checkpointer.map(Checkpointer::start);
                    run(writer, writes, written).await;
                });
            })?;
        Ok(GroupCommit { queue, state })
    }

    /// Whether the writer's connection is open, and whether it is idle.
    pub(super) fn connection(&self) -> (bool, bool) {
        match self.state.load(Ordering::Relaxed) {
            CLOSED => (false, false),
            IDLE => (true, true),
            _ => (true, false),
        }
    }

    /// Ends the writer task once the writes queued before have been answered, and closes its
    /// connection; writes queued later are answered that the writer has stopped.
    pub(super) async fn close(&self) {
        let (reply, closed) = oneshot::channel();
        let queued = Queued {
            job: Job::Close,
            reply,
        };
        if self.queue.send(queued).await.is_ok() {
            closed.await.ok();
        }
    }

    /// Queues `write`, journaled with `trace`, and waits until its group has committed.
    pub(super) async fn write(&self, write: PlantWrite, trace: Option<&TraceParent>) -> Outcome {
        self.queue(Job::Plant {
            write,
            trace: trace.map(ToString::to_string),
        })
        .await
    }

    /// Queues `work` and waits until its group has committed.
    pub(super) async fn run(&self, work: Work) -> Result<(), StoreError> {
        self.queue(Job::Work(work)).await.map(drop)
    }

    async fn queue(&self, job: Job) -> Outcome {
        let (reply, answer) = oneshot::channel();
        let queued = Queued { job, reply };
        self.queue.send(queued).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

fn stopped() -> StoreError {
    StoreError::NotCommitted {
        reason: "the writer task has stopped".into(),
    }
}

async fn run(mut writer: Writer, mut writes: mpsc::Receiver<Queued>, written: Written) {
    let mut group = Vec::with_capacity(GROUP_MAX);
    while writes.recv_many(&mut group, GROUP_MAX).await > 0 {
        let close = group
            .iter()
            .position(|queued| matches!(queued.job, Job::Close));
        let after = close.map(|at| group.split_off(at)).unwrap_or_default();
        // A request whose client went away before its write began is not written at all, as a
        // cancelled transaction would not be.
        group.retain(|queued: &Queued| !queued.reply.is_closed());
        let (jobs, replies): (Vec<Job>, Vec<oneshot::Sender<Outcome>>) = group
            .drain(..)
            .map(|queued| (queued.job, queued.reply))
            .unzip();
        match writer.commit(jobs).await {
            Ok(outcomes) => {
                if outcomes.iter().any(Result::is_ok) {
                    written.announce();
                }
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    // A client that went away meanwhile finds its write committed all the same.
                    reply.send(outcome).ok();
                }
                // After the answers, which need not wait for it; before the next group.
                writer.checkpoint().await;
            }
            Err(error) => {
                let reason = error.to_string();
                for reply in replies {
                    let reason = reason.clone();
                    reply.send(Err(StoreError::NotCommitted { reason })).ok();
                }
            }
        }
        if close.is_some() {
            writer.close().await;
            // Dropping the replies answers the closer, and every write queued after it, that the
            // writer has stopped.
            drop(after);
            return;
        }
    }
    writer.close().await;
}

/// The writer task's connection, opened with the store and again by the first group after one
/// is lost.
struct Writer {
    options: SqliteConnectOptions,
    conn: Option<SqliteConnection>,
    state: Arc<AtomicU8>,
    own: OwnWrites,
    checkpoints: Option<Checkpoints>,
}

impl Writer {
    /// Runs `group` in one transaction and commits it: each write's outcome once committed, or the
    /// failure that undid the whole group.
    async fn commit(&mut self, group: Vec<Job>) -> Result<Vec<Outcome>, StoreError> {
        if group.is_empty() {
            return Ok(Vec::new());
        }
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => self.conn.insert(self.options.connect().await?),
        };
        self.state.store(WRITING, Ordering::Relaxed);
        let _own = self.own.begin();
        let committed = async {
            let outcomes = writes(conn, group).await?;
            sqlx::query("COMMIT").execute(&mut *conn).await?;
            Ok(outcomes)
        }
        .await;
        if committed.is_err() {
            self.abandon().await;
        }
        self.state.store(
            if self.conn.is_some() { IDLE } else { CLOSED },
            Ordering::Relaxed,
        );
        committed
    }

    /// Hands the log to the checkpointer after a commit (see `checkpoint`), which may copy its
    /// tail on this connection.
    async fn checkpoint(&mut self) {
        if let (Some(checkpoints), Some(conn)) = (&self.checkpoints, &mut self.conn) {
            self.state.store(WRITING, Ordering::Relaxed);
            checkpoints.committed(conn).await;
            self.state.store(IDLE, Ordering::Relaxed);
        }
    }

    /// Rolls back what is left of a lost group. A connection that cannot is closed, and the next
    /// group opens another, rather than go on inside a transaction.
    async fn abandon(&mut self) {
        if let Some(mut conn) = self.conn.take()
            && sqlx::query("ROLLBACK").execute(&mut conn).await.is_ok()
        {
            self.conn = Some(conn);
        }
    }

    async fn close(&mut self) {
        if let Some(checkpoints) = self.checkpoints.take() {
            checkpoints.stop().await;
        }
        if let Some(conn) = self.conn.take() {
            conn.close().await.ok();
        }
        self.state.store(CLOSED, Ordering::Relaxed);
    }
}

/// Each write of `group` in its own savepoint, inside a transaction begun with the first. A plant
/// write takes one round trip: the transaction begun (first write) or the savepoint of the write
/// before released, the trace handed over if it changes, the savepoint taken, then the write (see
/// [`PlantWrite::apply`]); [`Work`] runs the same statements at the head of its own. An error
/// returned here means the transaction itself is lost, or was never begun.
async fn writes(conn: &mut SqliteConnection, group: Vec<Job>) -> Result<Vec<Outcome>, StoreError> {
    let mut outcomes = Vec::with_capacity(group.len());
    // The trace in `write_trace` now. It is set outside the savepoints, so that undoing a failed
    // write does not bring back the trace of the write before it without this knowing.
    let mut traced: Option<String> = None;
    let mut open = false;
    for (at, job) in group.into_iter().enumerate() {
        let mut before = String::new();
        if at == 0 {
            // IMMEDIATE takes the write lock now (waiting out other writers by the busy timeout),
            // so no read inside the group ever has to be upgraded to a write under contention.
            before.push_str("BEGIN IMMEDIATE; ");
        }
        if open {
            before.push_str("RELEASE write; ");
        }
        let outcome = match job {
            Job::Plant { write, trace } => {
                if trace != traced {
                    before.push_str(&match trace {
                        Some(_) => format!(
                            "INSERT OR REPLACE INTO write_trace (only, traceparent) VALUES (1, ?{}); ",
                            write.next_param()
                        ),
                        None => "DELETE FROM write_trace; ".to_owned(),
                    });
                }
                before.push_str("SAVEPOINT write; ");
                let outcome = write.apply(conn, &before, trace.as_deref()).await;
                // A write fails in its own statements: the ones before it, which cannot fail but
                // with the transaction, have run.
                traced = trace;
                outcome
            }
            Job::Work(work) => {
                before.push_str("SAVEPOINT write; ");
                work(conn, before).await.map(|()| None)
            }
            Job::Close => unreachable!("the group ends before the writer closes"),
        };
        open = true;
        if outcome.is_err() {
            // If SQLite rolled back the whole transaction (as it does on a full disk or an I/O
            // error), or the first write's could not begin, the savepoint is gone and this fails:
            // the group is lost, not only this write, and the write's own error says why.
            if sqlx::query("ROLLBACK TO write; RELEASE write")
                .execute(&mut *conn)
                .await
                .is_err()
            {
                return outcome.map(|_| Vec::new());
            }
            open = false;
        }
        outcomes.push(outcome);
    }
    // Taken back before the commit, so no other writer's changes are journaled with it. The commit
    // releases the last savepoint.
    if traced.is_some() {
        sqlx::query("DELETE FROM write_trace")
            .execute(&mut *conn)
            .await?;
    }
    Ok(outcomes)
}
