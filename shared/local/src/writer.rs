//! Group commit: one thread owns the database's write connection and runs
//! every write that is waiting in a single transaction, then answers each
//! writer once the batch is on disk. A write is acknowledged only after the
//! WAL frames that hold it are synced, so durability is that of
//! `synchronous = FULL`; what changes is who waits for the disk.
//!
//! The writer thread commits without syncing (`synchronous = NORMAL`) and
//! hands the batch to a syncer thread, which `fdatasync`s the WAL file once
//! for every batch committed since its last sync and only then answers the
//! batch's writers. So the writer runs the next batch while the disk syncs
//! the last one, and concurrent deliveries share each sync. Checkpoints
//! (copying the WAL into the database) run on a third thread and connection,
//! off both paths; SQLite syncs the WAL before and the database after each
//! checkpoint, so a synced frame is never lost to one.
//!
//! Each write runs inside its own SAVEPOINT: one that fails is rolled back
//! alone and reported to its caller; the others still commit.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

use rusqlite::Connection;

/// Most writes in one transaction.
const MAX_BATCH: usize = 1_024;

/// WAL frames (pages) past which the checkpointer copies the WAL into the
/// database: SQLite's own automatic checkpoint starts there too.
const CHECKPOINT_AT: i32 = 1_000;

/// The WAL file is kept near this size: past it the checkpointer waits for
/// readers to let go and starts the WAL over (a TRUNCATE checkpoint), and
/// SQLite cuts it back to this size whenever it starts over by itself
/// (`journal_size_limit`). Under sustained load with reads in flight a
/// PASSIVE checkpoint alone never gets to start the WAL over, and the file
/// only grows.
const WAL_LIMIT: u64 = 64 << 20;

/// How long a TRUNCATE checkpoint waits for readers to let go.
const CHECKPOINT_WAIT_MS: i64 = 200;

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
    /// Set by the syncer when a sync failed (see [`sync`]).
    failed: Arc<Mutex<Option<String>>>,
}

/// Opens a connection with the settings every nudge connection uses.
pub(crate) fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // Readers never sync; the writer's connection is set to NORMAL below
    // and its commits are synced by the syncer thread.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "busy_timeout", 5_000)?;
    // Deleted rows are overwritten, not left in free pages: an erase leaves
    // no personal data in the file.
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.pragma_update(None, "journal_size_limit", WAL_LIMIT as i64)?;
    Ok(conn)
}

/// A batch the writer committed, on its way to the syncer.
struct Committed {
    result: Result<(), String>,
    replies: Vec<Reply>,
}

impl Writer {
    /// Starts the writer, syncer and checkpointer threads, each on its own
    /// connection to `path` (or file). They end when the last handle is
    /// dropped.
    pub fn open(path: &Path) -> rusqlite::Result<Writer> {
        Writer::open_syncing(path, PathBuf::from(format!("{}-wal", path.display())), WAL_LIMIT)
    }

    /// As `open`, syncing the file at `wal` (SQLite's WAL of `path`, except
    /// in a test of what a failed sync does).
    fn open_syncing(path: &Path, wal: PathBuf, wal_limit: u64) -> rusqlite::Result<Writer> {
        // Commits are synced by the syncer, checkpoints run on their own
        // thread (woken by the WAL hook, which SQLite calls after each
        // commit with the WAL's length in frames).
        let mut conn = connect(path)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let (wal_grew, to_checkpoint) = mpsc::sync_channel::<()>(1);
        let mut next = CHECKPOINT_AT;
        conn.wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, frames: i32| {
            // Once per CHECKPOINT_AT frames while the WAL keeps growing
            // (readers can keep it from starting over).
            if frames < next - CHECKPOINT_AT {
                next = CHECKPOINT_AT;
            }
            if frames >= next {
                next = frames + CHECKPOINT_AT;
                let _ = wal_grew.try_send(());
            }
            Ok(())
        }))?;
        let checkpointer = connect(path)?;
        // A TRUNCATE checkpoint holds the write lock while it waits for
        // readers: it gives up (and tries again when the WAL grows) long
        // before a write waiting behind it would.
        checkpointer.pragma_update(None, "busy_timeout", CHECKPOINT_WAIT_MS)?;
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(f)
                .map(drop)
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
        };
        let (jobs, queue) = mpsc::channel::<Job>();
        let (committed, to_sync) = mpsc::channel::<Committed>();
        spawn("nudge-sqlite-writer", Box::new(move || run(&conn, &queue, &committed)))?;
        let failed = Arc::new(Mutex::new(None));
        let syncer_failed = failed.clone();
        spawn("nudge-sqlite-sync", Box::new(move || sync(&wal, &to_sync, &syncer_failed)))?;
        let wal_file = PathBuf::from(format!("{}-wal", path.display()));
        spawn(
            "nudge-sqlite-checkpoint",
            Box::new(move || checkpoint(&checkpointer, &to_checkpoint, &wal_file, wal_limit)),
        )?;
        Ok(Writer { jobs, failed })
    }

    /// `Err` once a sync has failed: from then on no write is acknowledged.
    pub fn health(&self) -> Result<(), String> {
        match &*self.failed.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(problem) => Err(problem.clone()),
            None => Ok(()),
        }
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

/// Runs a cached statement that takes no parameters.
fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

fn run(conn: &Connection, queue: &mpsc::Receiver<Job>, committed: &mpsc::Sender<Committed>) {
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
        let began = exec(conn, "BEGIN IMMEDIATE").map_err(|e| format!("sqlite: {e}"));
        for job in batch {
            match job {
                Job::Write(f) if began.is_ok() => {
                    if let Err(e) = exec(conn, "SAVEPOINT job") {
                        let (_, reply) = f(None);
                        reply(Err(format!("sqlite: {e}")));
                        continue;
                    }
                    let (keep, reply) = f(Some(conn));
                    let ended = if keep {
                        exec(conn, "RELEASE job")
                    } else {
                        exec(conn, "ROLLBACK TO job").and_then(|()| exec(conn, "RELEASE job"))
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
        let result = match began {
            Ok(()) => exec(conn, "COMMIT").map_err(|e| {
                let _ = conn.execute_batch("ROLLBACK");
                format!("sqlite commit failed: {e}")
            }),
            Err(e) => Err(e),
        };
        if let Err(mpsc::SendError(lost)) = committed.send(Committed { result, replies }) {
            // The syncer is gone (it cannot be, while this thread lives):
            // nobody is told a write is durable that was not synced.
            for reply in lost.replies {
                reply(Err("the database syncer has stopped".into()));
            }
        }
        for reply in checkpoints {
            reply(
                conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                    .map_err(|e| format!("sqlite checkpoint: {e}")),
            );
        }
    }
}

/// Syncs the WAL once for every run of committed batches, then answers
/// their writers.
///
/// One descriptor, opened at the first sync and kept: `fdatasync` on any
/// descriptor of the file flushes all of its written pages, whoever wrote
/// them, and reports a write-back error to every descriptor open when it
/// happened. After a failed sync nothing is acknowledged any more: the
/// pages that failed may be gone from the WAL, and SQLite discards every
/// frame after a bad one when it recovers, so a later sync that succeeds
/// proves nothing. The writers get the error (a 5xx for a delivery, which
/// the sender retries) until the process is restarted.
fn sync(wal: &Path, batches: &mpsc::Receiver<Committed>, failed: &Mutex<Option<String>>) {
    let mut file: Option<File> = None;
    while let Ok(first) = batches.recv() {
        let mut run = vec![first];
        run.extend(batches.try_iter());
        let earlier = failed.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let synced = match earlier {
            Some(e) => Err(e),
            None if run.iter().any(|b| b.result.is_ok()) => sync_file(wal, &mut file).map_err(|e| {
                let e = format!("cannot sync {}: {e}; nothing is acknowledged until nudge restarts", wal.display());
                eprintln!("nudge: {e}");
                *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.clone());
                e
            }),
            None => Ok(()),
        };
        for batch in run {
            let outcome = batch.result.and(synced.clone());
            for reply in batch.replies {
                reply(outcome.clone());
            }
        }
    }
}

fn sync_file(path: &Path, file: &mut Option<File>) -> std::io::Result<()> {
    let f = match file {
        Some(f) => f,
        None => file.insert(File::open(path)?),
    };
    f.sync_data()
}

/// Copies the WAL into the database whenever the writer says it grew, without
/// blocking the writer or readers (PASSIVE); the writer starts the WAL over
/// once everything in it is copied. Once the WAL file is past `limit`, a
/// TRUNCATE checkpoint waits (up to the busy timeout) for the readers and
/// the writer, copies everything and empties the file.
fn checkpoint(conn: &Connection, wal_grew: &mpsc::Receiver<()>, wal: &Path, limit: u64) {
    while wal_grew.recv().is_ok() {
        let large = std::fs::metadata(wal).is_ok_and(|m| m.len() > limit);
        let mode = if large { "TRUNCATE" } else { "PASSIVE" };
        if let Err(e) = conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |_| Ok(())) {
            tracing::warn!(error = %e, mode, "sqlite checkpoint failed; retried when the WAL grows again");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{WAL_LIMIT, Writer};

    fn run<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().expect("runtime").block_on(f)
    }

    #[test]
    fn after_a_failed_sync_no_write_is_acknowledged_again() {
        let dir = std::env::temp_dir().join(format!("nudge-writer-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("nudge.db");
        let insert = |n: i64| {
            move |c: &rusqlite::Connection| {
                c.execute("CREATE TABLE IF NOT EXISTS t (n INTEGER)", []).map_err(|e| e.to_string())?;
                c.execute("INSERT INTO t VALUES (?1)", [n]).map(drop).map_err(|e| e.to_string())
            }
        };
        let healthy = Writer::open(&db).unwrap();
        assert_eq!(run(healthy.write(insert(1))), Ok(()));
        // A syncer whose file cannot be synced (it does not exist).
        let broken = Writer::open_syncing(&db, dir.join("missing-wal"), WAL_LIMIT).unwrap();
        let first = run(broken.write(insert(2))).unwrap_err();
        assert!(first.contains("cannot sync") && first.contains("until nudge restarts"), "{first}");
        let second = run(broken.write(insert(3))).unwrap_err();
        assert_eq!(second, first, "refused for good, without trying again");
        assert_eq!(broken.health(), Err(first), "and reported unhealthy");
        assert_eq!(healthy.health(), Ok(()));
    }

    #[test]
    fn under_sustained_writes_with_readers_always_in_flight_the_wal_stays_bounded() {
        let dir = std::env::temp_dir().join(format!("nudge-writer-wal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("nudge.db");
        let wal = std::path::PathBuf::from(format!("{}-wal", db.display()));
        const LIMIT: u64 = 1 << 20;
        let writer = Writer::open_syncing(&db, wal.clone(), LIMIT).unwrap();
        run(writer.write(|c| c.execute("CREATE TABLE t (b BLOB)", []).map(drop).map_err(|e| e.to_string()))).unwrap();
        // Readers that always have a read transaction open, as a busy
        // server's do.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (db, stop) = (db.clone(), stop.clone());
                std::thread::spawn(move || {
                    let conn = super::connect(&db).unwrap();
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let _: i64 = conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
                    }
                })
            })
            .collect();
        let mut high = 0;
        for _ in 0..400 {
            run(writer.write(|c| {
                for _ in 0..16 {
                    c.execute("INSERT INTO t VALUES (zeroblob(4000))", []).map_err(|e| e.to_string())?;
                }
                Ok(())
            }))
            .unwrap();
            high = high.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for r in readers {
            r.join().unwrap();
        }
        // 400 × 16 × 4 KB ≈ 26 MB written; a checkpoint is asked for every
        // 1,000 pages (4 MB), so the WAL may run that far past the limit.
        assert!(high < LIMIT + (8 << 20), "the WAL reached {high} bytes");
    }
}
