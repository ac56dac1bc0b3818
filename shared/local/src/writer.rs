//! Group commit: one thread owns the database's write connection and runs
//! every write that is waiting in a single transaction — one fsync for the
//! whole batch — then answers each writer. A write is acknowledged only
//! after the batch that holds it is on disk (`synchronous = FULL`), so
//! durability is unchanged; what changes is that concurrent deliveries share
//! the cost of the fsync instead of queueing for one each.
//!
//! Each write runs inside its own SAVEPOINT: one that fails is rolled back
//! alone and reported to its caller; the others still commit.

use std::path::Path;
use std::sync::mpsc;

use rusqlite::Connection;

/// Most writes in one transaction.
const MAX_BATCH: usize = 1_024;

/// What the caller is told once its batch is (or is not) committed.
type Reply = Box<dyn FnOnce(Result<(), String>) + Send>;

/// A write: runs in the batch (`None`: the batch could not begin, so it
/// must not run) and says whether to keep its changes.
type Work = Box<dyn FnOnce(Option<&Connection>) -> (bool, Reply) + Send>;

enum Job {
    /// Its reply waits for the commit.
    Write(Work),
    /// `PRAGMA wal_checkpoint(TRUNCATE)` after the batch commits (an erase
    /// wants old row versions gone from the WAL file too).
    Checkpoint(Reply),
}

/// The handle callers send writes through; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
}

/// Opens a connection with the settings every nudge connection uses.
pub(crate) fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "busy_timeout", 5_000)?;
    // Deleted rows are overwritten, not left in free pages: an erase leaves
    // no personal data in the file.
    conn.pragma_update(None, "secure_delete", "ON")?;
    // 64 MB of page cache per connection (the default is 2 MB).
    conn.pragma_update(None, "cache_size", -65_536)?;
    Ok(conn)
}

impl Writer {
    /// Starts the writer thread on its own connection to `path`. The thread
    /// ends when the last handle is dropped.
    pub fn open(path: &Path) -> rusqlite::Result<Writer> {
        let conn = connect(path)?;
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("nudge-sqlite-writer".into())
            .spawn(move || run(&conn, &queue))
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        Ok(Writer { jobs })
    }

    /// Runs `f` in the next batch and returns its result once the batch is
    /// committed. An `Err` from `f` rolls back only `f`'s changes.
    pub async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, String> + Send + 'static,
    ) -> Result<T, String> {
        let (tx, rx) = tokio::sync::oneshot::channel::<Result<T, String>>();
        let job = Job::Write(Box::new(move |conn| {
            let result = match conn {
                Some(conn) => f(conn),
                None => Err("not run: the batch could not begin".into()),
            };
            let keep = result.is_ok();
            let reply: Reply = Box::new(move |committed| {
                let _ = tx.send(committed.and(result));
            });
            (keep, reply)
        }));
        self.submit(job, rx).await
    }

    /// Empties the WAL into the database once everything sent before is
    /// committed.
    pub async fn checkpoint(&self) -> Result<(), String> {
        let (tx, rx) = tokio::sync::oneshot::channel::<Result<(), String>>();
        let job = Job::Checkpoint(Box::new(move |done| {
            let _ = tx.send(done);
        }));
        self.submit(job, rx).await
    }

    async fn submit<T>(&self, job: Job, rx: tokio::sync::oneshot::Receiver<Result<T, String>>) -> Result<T, String> {
        const STOPPED: &str = "the database writer has stopped";
        self.jobs.send(job).map_err(|_| STOPPED.to_owned())?;
        rx.await.map_err(|_| STOPPED.to_owned())?
    }
}

fn run(conn: &Connection, queue: &mpsc::Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut replies = Vec::with_capacity(batch.len());
        let mut checkpoints = Vec::new();
        let began = conn.execute_batch("BEGIN IMMEDIATE").map_err(|e| format!("sqlite: {e}"));
        for job in batch {
            match job {
                Job::Write(f) if began.is_ok() => {
                    if let Err(e) = conn.execute_batch("SAVEPOINT job") {
                        let (_, reply) = f(None);
                        reply(Err(format!("sqlite: {e}")));
                        continue;
                    }
                    let (keep, reply) = f(Some(conn));
                    let ended = if keep {
                        conn.execute_batch("RELEASE job")
                    } else {
                        conn.execute_batch("ROLLBACK TO job; RELEASE job")
                    };
                    match ended {
                        Ok(()) => replies.push(reply),
                        Err(e) => reply(Err(format!("sqlite: {e}"))),
                    }
                }
                Job::Write(f) => {
                    let (_, reply) = f(None);
                    reply(began.clone());
                }
                Job::Checkpoint(reply) => checkpoints.push(reply),
            }
        }
        let committed = match began {
            Ok(()) => conn.execute_batch("COMMIT").map_err(|e| {
                let _ = conn.execute_batch("ROLLBACK");
                format!("sqlite commit failed: {e}")
            }),
            Err(e) => Err(e),
        };
        for reply in replies {
            reply(committed.clone());
        }
        for reply in checkpoints {
            reply(
                conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                    .map_err(|e| format!("sqlite checkpoint: {e}")),
            );
        }
    }
}
