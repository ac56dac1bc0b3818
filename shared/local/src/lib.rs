//! nudge-local: adapters for running nudge on one machine: the SQLite profile
//! store and the durable SQLite scheduler, the outbox mailer ([`outbox`]) and
//! the data directory's logs ([`files`]).
//!
//! [`SqliteStore`] implements the `ProfileStore` port on an embedded SQLite
//! database (WAL; a save that returned is synced to disk, see [`Writer`]) with
//! the same optimistic-concurrency semantics as the DynamoDB adapter: a save
//! names the version it read and fails with `Conflict` if the row moved.

use std::future::{Future, ready};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use jiff::Timestamp;
use nudge_app::identity::Alias;
use nudge_app::ports::{
    CatalogueStore, Counter, MessageLog, MessageRecord, ProfileStore, Resolved, Saved, Scheduler, SchedulerError,
    StoreError,
};
use nudge_core::{Check, ProductChange, Profile};
use rusqlite::{Connection, OptionalExtension, params};

pub mod files;
pub mod http_server;
pub mod keys;
pub mod outbox;
mod writer;
pub use writer::Writer;
use writer::connect;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS profiles (
    shop    TEXT NOT NULL,
    id      TEXT NOT NULL,
    version INTEGER NOT NULL,
    doc     TEXT NOT NULL,
    touched INTEGER NOT NULL DEFAULT 0, -- wall-clock second of the last save (retention)
    next_due INTEGER,                   -- earliest pending check (the sweep); NULL: none
    PRIMARY KEY (shop, id)
); -- a rowid table: documents of a kilobyte or two do not belong in a WITHOUT ROWID b-tree
CREATE INDEX IF NOT EXISTS profiles_by_due ON profiles (next_due) WHERE next_due IS NOT NULL;

CREATE TABLE IF NOT EXISTS aliases (
    key     TEXT PRIMARY KEY,
    shop    TEXT NOT NULL,
    profile TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS aliases_by_profile ON aliases (shop, profile);
CREATE TABLE IF NOT EXISTS products (
    shop    TEXT NOT NULL,
    id      TEXT NOT NULL,
    doc     TEXT,            -- NULL: deleted in the store (hides the feed's copy)
    updated_at INTEGER,      -- unix seconds of the change kept, when known
    PRIMARY KEY (shop, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS messages (  -- what was sent, for the feedback join
    id      TEXT PRIMARY KEY,
    shop    TEXT NOT NULL,
    profile TEXT NOT NULL,
    trigger TEXT NOT NULL,
    variant TEXT NOT NULL,
    episode INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS messages_by_profile ON messages (shop, profile);
CREATE TABLE IF NOT EXISTS counters (  -- per trigger variant and day (UTC)
    shop    TEXT NOT NULL,
    trigger TEXT NOT NULL,
    variant TEXT NOT NULL,
    day     TEXT NOT NULL,
    counter TEXT NOT NULL,
    n       INTEGER NOT NULL,
    PRIMARY KEY (shop, trigger, variant, day, counter)
) WITHOUT ROWID;
";

/// One per-day counter of one trigger variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterRow {
    pub shop: String,
    pub trigger: String,
    pub variant: String,
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    pub counter: String,
    pub n: i64,
}

/// What an erase is about to delete: one person (or a whole shop), with the
/// alias keys that identified them. The data directory's files that hold
/// personal data (sent messages, the event log, exports) are found by these.
pub struct Erasing<'a> {
    pub shop: &'a str,
    pub profiles: &'a [String],
    pub alias_keys: &'a [String],
    pub whole_shop: bool,
    /// The second pass, once the rows are gone: only the current event log
    /// can have gained lines since the first.
    pub current_log_only: bool,
}

/// Called before the rows are deleted; an error aborts the erase (nothing
/// deleted, the sender retries), so no file outlives its rows.
pub type EraseHook = Box<dyn Fn(&Erasing<'_>) -> Result<(), String> + Send + Sync>;

/// A few read connections (in WAL mode readers wait neither for the writer
/// nor for each other): a read takes whichever is free, so the runtime's
/// worker threads do not queue behind one connection.
struct Readers(Vec<Mutex<Connection>>);

impl Readers {
    /// `first` (already set up by the caller) and enough more for every core.
    fn open(path: &Path, first: Connection) -> rusqlite::Result<Readers> {
        let n = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(2, 8);
        let mut all = vec![Mutex::new(first)];
        for _ in 1..n {
            all.push(Mutex::new(connect(path)?));
        }
        Ok(Readers(all))
    }

    fn get(&self) -> MutexGuard<'_, Connection> {
        for conn in &self.0 {
            match conn.try_lock() {
                Ok(guard) => return guard,
                Err(std::sync::TryLockError::Poisoned(e)) => return e.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => {}
            }
        }
        self.0[0].lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Profiles and aliases in SQLite. Reads use connections of their own (WAL:
/// they never wait for a write); writes go through the group-commit
/// [`Writer`], which the scheduler on the same file shares.
pub struct SqliteStore {
    readers: Readers,
    writer: Writer,
    erase_hook: Arc<std::sync::OnceLock<EraseHook>>,
    /// Saves refused because the row moved since it was read (a metric, and
    /// proof in tests that concurrency was really exercised).
    pub conflicts: Arc<AtomicU64>,
}

/// The first column of every row `query` returns.
fn column(conn: &Connection, query: &str, args: &[&String]) -> Result<Vec<String>, String> {
    let mut stmt = conn.prepare_cached(query).map_err(sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(0)).map_err(sql)?;
    rows.collect::<Result<_, _>>().map_err(sql)
}

fn sql(e: rusqlite::Error) -> String {
    format!("sqlite: {e}")
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("sqlite: {e}"))
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, with a writer of
    /// its own.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let writer = Writer::open(path).map_err(unavailable)?;
        SqliteStore::with_writer(path, writer)
    }

    /// Opens the database at `path`, writing through `writer` (shared with
    /// the scheduler on the same file, so one fsync serves both).
    pub fn with_writer(path: &Path, writer: Writer) -> Result<SqliteStore, StoreError> {
        let conn = connect(path).map_err(unavailable)?;
        add_missing_column(&conn, "profiles", "next_due", "INTEGER").map_err(unavailable)?;
        conn.execute_batch(SCHEMA).map_err(unavailable)?;
        let readers = Readers::open(path, conn).map_err(unavailable)?;
        Ok(SqliteStore { readers, writer, erase_hook: Arc::default(), conflicts: Arc::default() })
    }

    /// `PRAGMA quick_check`: `Err` naming the first problem when the file
    /// is damaged (the server refuses to start on it).
    pub fn quick_check(&self) -> Result<(), StoreError> {
        let verdict: String = self.conn().query_row("PRAGMA quick_check", [], |r| r.get(0)).map_err(unavailable)?;
        if verdict == "ok" { Ok(()) } else { Err(unavailable(format!("database check failed: {verdict}"))) }
    }

    /// Sets what else an erase removes (the shell's files); once.
    pub fn on_erase(&self, hook: EraseHook) {
        let _ = self.erase_hook.set(hook);
    }

    /// Profiles with a check due at `cutoff` or earlier, longest overdue
    /// first, up to `limit`: what `nudge serve`'s sweep runs (like the
    /// Lambda functions' reconcile). A profile that no longer reads is set
    /// aside (its `next_due` cleared, logged), so it cannot stop the sweep.
    pub async fn overdue(&self, cutoff: Timestamp, limit: usize) -> Result<Vec<Profile>, StoreError> {
        let rows: Vec<(String, String, String, i64)> = {
            let conn = self.conn();
            let mut stmt = conn
                .prepare_cached(
                    "SELECT shop, id, doc, version FROM profiles WHERE next_due <= ?1 ORDER BY next_due LIMIT ?2",
                )
                .map_err(unavailable)?;
            let rows = stmt
                .query_map(params![cutoff.as_second(), limit as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })
                .map_err(unavailable)?;
            rows.collect::<Result<_, _>>().map_err(unavailable)?
        };
        let mut out = Vec::new();
        for (shop, id, doc, version) in rows {
            match serde_json::from_str::<Profile>(&doc) {
                Ok(mut p) => {
                    p.version = u64::try_from(version).unwrap_or(0);
                    out.push(p);
                }
                Err(e) => {
                    let error = nudge_app::ports::unreadable(&e);
                    tracing::error!(profile = %id, %error, "unreadable profile set aside from the sweep");
                    self.writer.write(move |conn| leave_sweep(conn, &shop, &id)).await.map_err(unavailable)?;
                }
            }
        }
        Ok(out)
    }

    /// Profiles not saved since `cutoff` (unix seconds): retention's sweep.
    pub fn idle_profiles(&self, cutoff: i64, limit: usize) -> Result<Vec<(String, String)>, StoreError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare_cached("SELECT shop, id FROM profiles WHERE touched < ?1 LIMIT ?2").map_err(unavailable)?;
        let rows =
            stmt.query_map(params![cutoff, limit as i64], |r| Ok((r.get(0)?, r.get(1)?))).map_err(unavailable)?;
        rows.collect::<Result<_, _>>().map_err(unavailable)
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.readers.get()
    }

    /// Up to `limit` profiles, newest version first (the dashboard's list).
    pub fn profiles(&self, limit: usize) -> Result<Vec<Profile>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT doc, version FROM profiles ORDER BY version DESC LIMIT ?1")
            .map_err(unavailable)?;
        let rows = stmt
            .query_map([limit as i64], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .map_err(unavailable)?;
        let mut out = Vec::new();
        for row in rows {
            let (doc, version) = row.map_err(unavailable)?;
            let mut p: Profile = serde_json::from_str(&doc)
                .map_err(|e| unavailable(format!("profile {}", nudge_app::ports::unreadable(&e))))?;
            p.version = u64::try_from(version).unwrap_or(0);
            out.push(p);
        }
        Ok(out)
    }

    pub fn profile_count(&self) -> Result<usize, StoreError> {
        let n: i64 = self.conn().query_row("SELECT count(*) FROM profiles", [], |r| r.get(0)).map_err(unavailable)?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    pub fn alias_count(&self) -> Result<usize, StoreError> {
        let n: i64 = self.conn().query_row("SELECT count(*) FROM aliases", [], |r| r.get(0)).map_err(unavailable)?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    fn resolve_now(&self, shop: &str, aliases: &[Alias]) -> Result<Resolved, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT profile FROM aliases WHERE key = ?1").map_err(unavailable)?;
        let mut out = Resolved::default();
        for a in aliases {
            let found: Option<String> = stmt.query_row([a.key(shop)], |r| r.get(0)).optional().map_err(unavailable)?;
            match found {
                Some(p) if out.profile.is_none() => out.profile = Some(p),
                Some(p) => {
                    if out.profile.as_deref() != Some(p.as_str()) && !out.others.contains(&p) {
                        out.others.push(p);
                    }
                }
                None => out.unlinked.push(a.clone()),
            }
        }
        Ok(out)
    }

    async fn link_async(&self, shop: &str, aliases: &[Alias], profile: &str) -> Result<(), StoreError> {
        let rows: Vec<(String, String, String)> =
            aliases.iter().map(|a| (a.key(shop), shop.to_owned(), profile.to_owned())).collect();
        self.writer
            .write(move |conn| {
                let mut insert = conn
                    .prepare_cached(
                        "INSERT INTO aliases (key, shop, profile) VALUES (?1, ?2, ?3)
                         ON CONFLICT (key) DO UPDATE SET profile = excluded.profile",
                    )
                    .map_err(sql)?;
                for (key, shop, profile) in &rows {
                    insert.execute(params![key, shop, profile]).map_err(sql)?;
                }
                Ok(())
            })
            .await
            .map_err(unavailable)
    }

    fn load_now(&self, shop: &str, id: &str) -> Result<Option<Profile>, StoreError> {
        let row: Option<(i64, String)> = self
            .conn()
            .prepare_cached("SELECT version, doc FROM profiles WHERE shop = ?1 AND id = ?2")
            .and_then(|mut s| s.query_row([shop, id], |r| Ok((r.get(0)?, r.get(1)?))).optional())
            .map_err(unavailable)?;
        row.map(|(version, doc)| {
            let mut p: Profile = serde_json::from_str(&doc)
                .map_err(|e| unavailable(format!("profile {}", nudge_app::ports::unreadable(&e))))?;
            p.version = u64::try_from(version).unwrap_or(0);
            Ok(p)
        })
        .transpose()
    }

    async fn save_async(&self, profile: &mut Profile, expected: Option<u64>) -> Result<Saved, StoreError> {
        let next = expected.map_or(1, |v| v + 1);
        let mut doc = profile.clone();
        doc.version = next;
        let json = serde_json::to_string(&doc).map_err(unavailable)?;
        let next_due = profile.next_due().map(|t| t.as_second());
        // The profile's pending checks are written in the same transaction
        // as the profile: an episode is never saved without its check row.
        let rows =
            profile.pending_checks().iter().map(CheckRow::of).collect::<Result<Vec<_>, _>>().map_err(unavailable)?;
        let (shop, id, conflicts) = (profile.shop.clone(), profile.id.clone(), self.conflicts.clone());
        let saved = self
            .writer
            .write(move |conn| {
                let now = Timestamp::now().as_second();
                let changed = match expected {
                    None => conn
                        .prepare_cached(
                            "INSERT INTO profiles (shop, id, version, doc, touched, next_due)
                             VALUES (?1, ?2, 1, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                        )
                        .and_then(|mut s| s.execute(params![shop, id, json, now, next_due])),
                    Some(v) => conn
                        .prepare_cached(
                            "UPDATE profiles SET version = ?1, doc = ?2, touched = ?6, next_due = ?7
                             WHERE shop = ?3 AND id = ?4 AND version = ?5",
                        )
                        .and_then(|mut s| s.execute(params![next as i64, json, shop, id, v as i64, now, next_due])),
                }
                .map_err(sql)?;
                if changed == 1 {
                    for row in &rows {
                        row.insert(conn)?;
                    }
                    Ok(Saved::Ok)
                } else {
                    conflicts.fetch_add(1, Ordering::Relaxed);
                    Ok(Saved::Conflict)
                }
            })
            .await
            .map_err(unavailable)?;
        if saved == Saved::Ok {
            profile.version = next;
        }
        Ok(saved)
    }

    /// Deletes one person (`person`) or, with `None`, a whole shop, after
    /// the erase hook removed their files, then empties the WAL.
    /// Who an erase names: the alias keys and profiles (with those merged
    /// into them: their redirects are the person's too).
    fn erased(conn: &Connection, shop: &str, person: Option<&str>) -> Result<(Vec<String>, Vec<String>), String> {
        let shop = shop.to_owned();
        let (keys, mut profiles) = match person {
            Some(id) => (
                column(conn, "SELECT key FROM aliases WHERE shop = ?1 AND profile = ?2", &[&shop, &id.to_owned()])?,
                vec![id.to_owned()],
            ),
            None => (
                column(conn, "SELECT key FROM aliases WHERE shop = ?1", &[&shop])?,
                column(conn, "SELECT id FROM profiles WHERE shop = ?1", &[&shop])?,
            ),
        };
        let merged = format!("A#{shop}#merged#");
        profiles.extend(keys.iter().filter_map(|k| k.strip_prefix(&merged)).map(str::to_owned));
        Ok((keys, profiles))
    }

    /// Runs the erase hook off the writer thread (rewriting the event logs
    /// can take a while, and every write would wait for it).
    async fn erase_files(
        &self,
        shop: &str,
        person: Option<&str>,
        keys: Vec<String>,
        profiles: Vec<String>,
        current_log_only: bool,
    ) -> Result<(), StoreError> {
        if self.erase_hook.get().is_none() {
            return Ok(());
        }
        let (hook, shop, whole_shop) = (self.erase_hook.clone(), shop.to_owned(), person.is_none());
        tokio::task::spawn_blocking(move || {
            let hook = hook.get().ok_or("no erase hook")?;
            let e = Erasing { shop: &shop, profiles: &profiles, alias_keys: &keys, whole_shop, current_log_only };
            hook(&e).map_err(|m| format!("erase of the data files failed: {m}"))
        })
        .await
        .map_err(unavailable)?
        .map_err(StoreError::Unavailable)
    }

    /// Erases one person (or a whole shop): first their files (an error
    /// stops here: nothing deleted, the sender retries), then their rows in
    /// one transaction, then a second pass over the current event log for
    /// lines appended meanwhile (by the keys the rows had at deletion).
    async fn erase_async(&self, shop: &str, person: Option<&str>) -> Result<(), StoreError> {
        let (keys, profiles) = Self::erased(&self.conn(), shop, person).map_err(unavailable)?;
        self.erase_files(shop, person, keys, profiles, false).await?;
        let (shop_owned, person_owned) = (shop.to_owned(), person.map(str::to_owned));
        let (keys, profiles) = self
            .writer
            .write(move |conn| {
                let (shop, person) = (shop_owned, person_owned);
                let named = Self::erased(conn, &shop, person.as_deref())?;
                match &person {
                    Some(id) => {
                        conn.execute("DELETE FROM profiles WHERE shop = ?1 AND id = ?2", [&shop, id]).map_err(sql)?;
                        conn.execute("DELETE FROM aliases WHERE shop = ?1 AND profile = ?2", [&shop, id])
                            .map_err(sql)?;
                        conn.execute("DELETE FROM messages WHERE shop = ?1 AND profile = ?2", [&shop, id])
                            .map_err(sql)?;
                    }
                    None => {
                        for table in ["profiles", "aliases", "products", "messages", "counters"] {
                            conn.execute(&format!("DELETE FROM {table} WHERE shop = ?1"), [&shop]).map_err(sql)?;
                        }
                    }
                }
                Ok(named)
            })
            .await
            .map_err(unavailable)?;
        self.erase_files(shop, person, keys, profiles, true).await?;
        // Old row versions must not live on in the WAL file either.
        self.writer.checkpoint().await.map_err(unavailable)
    }

    async fn put_products_async(
        &self,
        shop: &str,
        changes: &[ProductChange],
    ) -> Result<Vec<ProductChange>, StoreError> {
        let mut rows = Vec::with_capacity(changes.len());
        for c in changes {
            let doc = match c {
                ProductChange::Upsert(p) => Some(serde_json::to_string(p).map_err(unavailable)?),
                ProductChange::Remove { .. } => None,
            };
            rows.push((shop.to_owned(), c.id().to_owned(), doc, c.at().map(Timestamp::as_second)));
        }
        let recorded = self
            .writer
            .write(move |conn| {
                // The kept change stays when it is newer (both times known).
                let mut upsert = conn
                    .prepare_cached(
                        "INSERT INTO products (shop, id, doc, updated_at) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (shop, id) DO UPDATE SET doc = excluded.doc, updated_at = excluded.updated_at
                         WHERE products.updated_at IS NULL OR excluded.updated_at IS NULL
                            OR excluded.updated_at >= products.updated_at",
                    )
                    .map_err(sql)?;
                let mut recorded = Vec::with_capacity(rows.len());
                for (shop, id, doc, at) in &rows {
                    recorded.push(upsert.execute(params![shop, id, doc, at]).map_err(sql)? == 1);
                }
                Ok(recorded)
            })
            .await
            .map_err(unavailable)?;
        Ok(changes.iter().zip(recorded).filter(|(_, r)| *r).map(|(c, _)| c.clone()).collect())
    }

    fn products_now(&self, shop: &str) -> Result<Vec<ProductChange>, StoreError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare_cached("SELECT id, doc, updated_at FROM products WHERE shop = ?1").map_err(unavailable)?;
        let rows = stmt
            .query_map([shop], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?, r.get::<_, Option<i64>>(2)?))
            })
            .map_err(unavailable)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(match row.map_err(unavailable)? {
                (id, None, at) => ProductChange::Remove { id, at: at.and_then(|s| Timestamp::from_second(s).ok()) },
                (_, Some(doc), _) => ProductChange::Upsert(
                    serde_json::from_str(&doc)
                        .map_err(|e| unavailable(format!("product {}", nudge_app::ports::unreadable(&e))))?,
                ),
            });
        }
        Ok(out)
    }

    /// Shops with stored product changes (loaded into the catalogue at start).
    pub fn catalogue_shops(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT DISTINCT shop FROM products").map_err(unavailable)?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(unavailable)?;
        rows.collect::<Result<_, _>>().map_err(unavailable)
    }

    async fn merge_into_async(&self, shop: &str, from: &str, into: &str) -> Result<(), StoreError> {
        let (shop, from, into) = (shop.to_owned(), from.to_owned(), into.to_owned());
        self.writer
            .write(move |conn| {
                conn.execute("UPDATE aliases SET profile = ?1 WHERE shop = ?2 AND profile = ?3", [&into, &shop, &from])
                    .map_err(sql)?;
                conn.execute("DELETE FROM profiles WHERE shop = ?1 AND id = ?2", [&shop, &from]).map_err(sql)?;
                Ok(())
            })
            .await
            .map_err(unavailable)
    }
}

impl SqliteStore {
    async fn record_message_async(&self, r: &MessageRecord) -> Result<(), StoreError> {
        let r = r.clone();
        self.writer
            .write(move |conn| {
                conn.execute(
                    "INSERT OR REPLACE INTO messages (id, shop, profile, trigger, variant, episode) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    rusqlite::params![r.message_id, r.shop, r.profile, r.trigger, r.variant, r.episode],
                )
                .map(drop)
                .map_err(sql)
            })
            .await
            .map_err(unavailable)
    }

    fn message_now(&self, id: &str) -> Result<Option<MessageRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT shop, profile, trigger, variant, episode FROM messages WHERE id = ?1")
            .map_err(unavailable)?;
        let mut rows = stmt
            .query_map([id], |r| {
                Ok(MessageRecord {
                    message_id: id.to_owned(),
                    shop: r.get(0)?,
                    profile: r.get(1)?,
                    trigger: r.get(2)?,
                    variant: r.get(3)?,
                    episode: r.get(4)?,
                })
            })
            .map_err(unavailable)?;
        rows.next().transpose().map_err(unavailable)
    }

    async fn count_async(&self, r: &MessageRecord, day: jiff::civil::Date, counter: Counter) -> Result<(), StoreError> {
        let (shop, trigger, variant, day) = (r.shop.clone(), r.trigger.clone(), r.variant.clone(), day.to_string());
        self.writer
            .write(move |conn| {
                conn.execute(
                    "INSERT INTO counters (shop, trigger, variant, day, counter, n) VALUES (?1, ?2, ?3, ?4, ?5, 1) \
                     ON CONFLICT DO UPDATE SET n = n + 1",
                    rusqlite::params![shop, trigger, variant, day, counter],
                )
                .map(drop)
                .map_err(sql)
            })
            .await
            .map_err(unavailable)
    }

    /// Every counter from `since` (a UTC day) on, newest day first.
    pub fn counters_since(&self, since: jiff::civil::Date) -> Result<Vec<CounterRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT shop, trigger, variant, day, counter, n FROM counters WHERE day >= ?1 \
                 ORDER BY day DESC, shop, trigger, variant",
            )
            .map_err(unavailable)?;
        let rows = stmt
            .query_map([since.to_string()], |r| {
                Ok(CounterRow {
                    shop: r.get(0)?,
                    trigger: r.get(1)?,
                    variant: r.get(2)?,
                    day: r.get(3)?,
                    counter: r.get(4)?,
                    n: r.get(5)?,
                })
            })
            .map_err(unavailable)?;
        rows.collect::<Result<_, _>>().map_err(unavailable)
    }

    /// A counter of one trigger variant on one day (0 when never counted).
    pub fn counter(
        &self,
        shop: &str,
        trigger: &str,
        variant: &str,
        day: jiff::civil::Date,
        counter: Counter,
    ) -> Result<i64, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT n FROM counters WHERE shop = ?1 AND trigger = ?2 AND variant = ?3 AND day = ?4 AND counter = ?5",
            )
            .map_err(unavailable)?;
        let mut rows = stmt
            .query_map(rusqlite::params![shop, trigger, variant, day.to_string(), counter], |r| r.get::<_, i64>(0))
            .map_err(unavailable)?;
        Ok(rows.next().transpose().map_err(unavailable)?.unwrap_or(0))
    }
}

impl MessageLog for SqliteStore {
    fn record_message(&self, record: &MessageRecord) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.record_message_async(record)
    }
    fn message(&self, message_id: &str) -> impl Future<Output = Result<Option<MessageRecord>, StoreError>> + Send {
        ready(self.message_now(message_id))
    }
    fn count(
        &self,
        record: &MessageRecord,
        day: jiff::civil::Date,
        counter: Counter,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.count_async(record, day, counter)
    }
}

impl CatalogueStore for SqliteStore {
    fn put_products(
        &self,
        shop: &str,
        changes: &[ProductChange],
    ) -> impl Future<Output = Result<Vec<ProductChange>, StoreError>> + Send {
        self.put_products_async(shop, changes)
    }
    fn products(&self, shop: &str) -> impl Future<Output = Result<Vec<ProductChange>, StoreError>> + Send {
        ready(self.products_now(shop))
    }
}

// Reads are short and local and run in place (a WAL reader never waits for
// the writer); writes wait, without blocking the caller's thread, for the
// group commit that holds them.
impl ProfileStore for SqliteStore {
    fn resolve(&self, shop: &str, aliases: &[Alias]) -> impl Future<Output = Result<Resolved, StoreError>> + Send {
        ready(self.resolve_now(shop, aliases))
    }
    fn link(
        &self,
        shop: &str,
        aliases: &[Alias],
        profile: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.link_async(shop, aliases, profile)
    }
    fn load(&self, shop: &str, id: &str) -> impl Future<Output = Result<Option<Profile>, StoreError>> + Send {
        ready(self.load_now(shop, id))
    }
    fn save(
        &self,
        profile: &mut Profile,
        expected: Option<u64>,
    ) -> impl Future<Output = Result<Saved, StoreError>> + Send {
        self.save_async(profile, expected)
    }
    fn erase(&self, shop: &str, id: &str) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.erase_async(shop, Some(id))
    }
    fn erase_shop(&self, shop: &str) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.erase_async(shop, None)
    }
    fn merge_into(&self, shop: &str, from: &str, into: &str) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.merge_into_async(shop, from, into)
    }
    fn health(&self) -> Result<(), String> {
        self.writer.health()
    }
    fn contended(&self, attempt: u32) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(nudge_app::ports::contention_backoff(attempt))
    }
}

/// A row of the `checks` table.
struct CheckRow {
    name: String,
    due: i64,
    payload: String,
    shop: String,
    profile: String,
}

impl CheckRow {
    fn of(check: &Check) -> serde_json::Result<CheckRow> {
        Ok(CheckRow {
            name: check.name(),
            due: check.due.as_second(),
            payload: serde_json::to_string(check)?,
            shop: check.shop.clone(),
            profile: check.profile.clone(),
        })
    }

    /// Idempotent by the check's deterministic name.
    fn insert(&self, conn: &Connection) -> Result<(), String> {
        conn.prepare_cached(
            "INSERT INTO checks (name, due, payload, shop, profile) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (name) DO NOTHING",
        )
        .and_then(|mut s| s.execute(params![self.name, self.due, self.payload, self.shop, self.profile]))
        .map(drop)
        .map_err(sql)
    }
}

/// The durable local scheduler: pending checks live in SQLite, so they
/// survive a restart (overdue ones are simply due at once). The serve loop
/// asks for due checks, runs them, and marks each done. A check delivered
/// twice (a crash between running and marking) is harmless: the episode was
/// claimed in the profile before any email, so the second run is `duplicate`.
pub struct SqliteScheduler {
    readers: Readers,
    writer: Writer,
    /// Rows skipped because they no longer parse, waiting for
    /// [`SqliteScheduler::set_aside_unreadable`].
    unreadable: std::sync::atomic::AtomicBool,
}

const CHECKS: &str = "
CREATE TABLE IF NOT EXISTS checks (
    name    TEXT PRIMARY KEY,
    due     INTEGER NOT NULL,
    payload TEXT NOT NULL,
    shop    TEXT NOT NULL DEFAULT '',
    profile TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0  -- runs that failed
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS checks_by_due ON checks (due);
CREATE INDEX IF NOT EXISTS checks_by_profile ON checks (shop, profile);
CREATE TABLE IF NOT EXISTS checks_set_aside ( -- unreadable or failing too often, kept for a look
    name    TEXT PRIMARY KEY,
    payload TEXT NOT NULL,
    reason  TEXT NOT NULL,
    at      INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Moves a check row to `checks_set_aside`, with why.
fn set_check_aside(conn: &Connection, name: &str, payload: &str, reason: &str, at: i64) -> Result<(), String> {
    conn.execute(
        "INSERT OR REPLACE INTO checks_set_aside (name, payload, reason, at) VALUES (?1, ?2, ?3, ?4)",
        params![name, payload, reason, at],
    )
    .map_err(sql)?;
    conn.execute("DELETE FROM checks WHERE name = ?1", [name]).map(drop).map_err(sql)
}

/// Takes a profile out of the sweep (until its next save).
fn leave_sweep(conn: &Connection, shop: &str, id: &str) -> Result<(), String> {
    conn.execute("UPDATE profiles SET next_due = NULL WHERE shop = ?1 AND id = ?2", [shop, id]).map(drop).map_err(sql)
}

/// A check whose runs failed this many times is set aside.
pub const MAX_CHECK_ATTEMPTS: u32 = 10;

/// What became of a check that failed to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failed {
    /// Due again at `at`.
    Retry { attempts: u32, at: Timestamp },
    /// Moved to `checks_set_aside`.
    SetAside,
}

/// Adds `column` to `table` when an older database lacks it (and the
/// table exists: a new database gets it from its `CREATE TABLE`).
fn add_missing_column(conn: &Connection, table: &str, column: &str, decl: &str) -> rusqlite::Result<()> {
    let has_table: bool =
        conn.query_row("SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?1", [table], |r| {
            r.get(0)
        })?;
    let has_column: bool =
        conn.query_row("SELECT count(*) > 0 FROM pragma_table_info(?1) WHERE name = ?2", [table, column], |r| {
            r.get(0)
        })?;
    if has_table && !has_column {
        conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {decl}"))?;
    }
    Ok(())
}

impl SqliteScheduler {
    /// Opens (creating if needed) the checks table at `path`, with a writer
    /// of its own.
    pub fn open(path: &Path) -> Result<SqliteScheduler, SchedulerError> {
        let writer = Writer::open(path).map_err(|e| SchedulerError(format!("sqlite: {e}")))?;
        SqliteScheduler::with_writer(path, writer)
    }

    /// As `open`, writing through `writer` (the store's, for one fsync).
    pub fn with_writer(path: &Path, writer: Writer) -> Result<SqliteScheduler, SchedulerError> {
        let err = |e: rusqlite::Error| SchedulerError(format!("sqlite: {e}"));
        let conn = connect(path).map_err(err)?;
        add_missing_column(&conn, "checks", "attempts", "INTEGER NOT NULL DEFAULT 0").map_err(err)?;
        conn.execute_batch(CHECKS).map_err(err)?;
        Ok(SqliteScheduler { readers: Readers::open(path, conn).map_err(err)?, writer, unreadable: Default::default() })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.readers.get()
    }

    /// Checks due at or before `now`, earliest first.
    pub fn due(&self, now: Timestamp, limit: usize) -> Result<Vec<Check>, SchedulerError> {
        self.select(
            "SELECT name, payload FROM checks WHERE due <= ?1 ORDER BY due LIMIT ?2",
            params![now.as_second(), limit as i64],
        )
    }

    /// Every pending check, earliest first.
    pub fn pending(&self) -> Result<Vec<Check>, SchedulerError> {
        self.select("SELECT name, payload FROM checks ORDER BY due", [])
    }

    /// When the earliest pending check is due.
    pub fn next_due(&self) -> Result<Option<Timestamp>, SchedulerError> {
        let due: Option<i64> = self
            .conn()
            .query_row("SELECT min(due) FROM checks", [], |r| r.get(0))
            .map_err(|e| SchedulerError(format!("sqlite: {e}")))?;
        Ok(due.and_then(|s| Timestamp::from_second(s).ok()))
    }

    /// Marks a check run: it will not be handed out again.
    pub async fn done(&self, check: &Check) -> Result<(), SchedulerError> {
        self.delete(check).await
    }

    async fn delete(&self, check: &Check) -> Result<(), SchedulerError> {
        let name = check.name();
        self.writer
            .write(move |conn| {
                conn.prepare_cached("DELETE FROM checks WHERE name = ?1")
                    .and_then(|mut s| s.execute([name]))
                    .map(|_| ())
                    .map_err(sql)
            })
            .await
            .map_err(SchedulerError)
    }

    fn select<P: rusqlite::Params>(&self, sql: &str, p: P) -> Result<Vec<Check>, SchedulerError> {
        let err = |e: rusqlite::Error| SchedulerError(format!("sqlite: {e}"));
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(sql).map_err(err)?;
        let rows = stmt.query_map(p, |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))).map_err(err)?;
        let mut out = Vec::new();
        for row in rows {
            let (name, payload) = row.map_err(err)?;
            // A row that no longer parses must not stop the others: it is
            // skipped, logged, and set aside by the check loop.
            match serde_json::from_str(&payload) {
                Ok(check) => out.push(check),
                Err(e) => {
                    let error = nudge_app::ports::unreadable(&e);
                    tracing::error!(check = %name, %error, "stored check unreadable; set aside");
                    self.unreadable.store(true, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
        Ok(out)
    }

    /// Records that running `check` failed with `reason`: it is due again
    /// after a backoff that doubles from 2 s (at most 10 minutes), and after
    /// [`MAX_CHECK_ATTEMPTS`] failures it is moved to `checks_set_aside` and
    /// its profile taken out of the sweep, until the profile's next save. A
    /// check with no row (found by the sweep) gets one.
    pub async fn failed(&self, check: &Check, reason: &str, now: Timestamp) -> Result<Failed, SchedulerError> {
        let row = CheckRow::of(check).map_err(|e| SchedulerError(e.to_string()))?;
        let reason = reason.chars().take(500).collect::<String>();
        let now = now.as_second();
        self.writer
            .write(move |conn| {
                row.insert(conn)?;
                let attempts: u32 = conn
                    .query_row(
                        "UPDATE checks SET attempts = attempts + 1 WHERE name = ?1 RETURNING attempts",
                        [&row.name],
                        |r| r.get(0),
                    )
                    .map_err(sql)?;
                if attempts >= MAX_CHECK_ATTEMPTS {
                    set_check_aside(conn, &row.name, &row.payload, &format!("{attempts} runs failed: {reason}"), now)?;
                    leave_sweep(conn, &row.shop, &row.profile)?;
                    return Ok(Failed::SetAside);
                }
                let at = now + (1i64 << attempts.min(30)).min(600);
                conn.execute("UPDATE checks SET due = ?1 WHERE name = ?2", params![at, row.name]).map_err(sql)?;
                Ok(Failed::Retry { attempts, at: Timestamp::from_second(at).unwrap_or(Timestamp::MAX) })
            })
            .await
            .map_err(|e| SchedulerError(format!("sqlite: {e}")))
    }

    /// The checks set aside: name, reason, when (unix seconds).
    pub fn set_aside(&self) -> Result<Vec<(String, String, i64)>, SchedulerError> {
        let err = |e: rusqlite::Error| SchedulerError(format!("sqlite: {e}"));
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT name, reason, at FROM checks_set_aside ORDER BY at").map_err(err)?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// Moves the rows that no longer parse to `checks_set_aside`, with the
    /// reason; returns how many. Does nothing unless a read met one.
    pub async fn set_aside_unreadable(&self) -> Result<usize, SchedulerError> {
        if !self.unreadable.swap(false, std::sync::atomic::Ordering::Relaxed) {
            return Ok(0);
        }
        let now = Timestamp::now().as_second();
        self.writer
            .write(move |conn| {
                let bad: Vec<(String, String, String)> = {
                    let mut stmt = conn.prepare("SELECT name, payload FROM checks").map_err(sql)?;
                    let rows =
                        stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))).map_err(sql)?;
                    rows.filter_map(Result::ok)
                        .filter_map(|(n, p)| {
                            let e = serde_json::from_str::<Check>(&p).err()?;
                            Some((n, p, nudge_app::ports::unreadable(&e)))
                        })
                        .collect()
                };
                for (name, payload, reason) in &bad {
                    set_check_aside(conn, name, payload, reason, now)?;
                }
                Ok(bad.len())
            })
            .await
            .map_err(|e| SchedulerError(format!("sqlite: {e}")))
    }
}

impl Scheduler for SqliteScheduler {
    /// Idempotent by the check's deterministic name.
    async fn schedule(&self, check: &Check) -> Result<(), SchedulerError> {
        let row = CheckRow::of(check).map_err(|e| SchedulerError(e.to_string()))?;
        self.writer.write(move |conn| row.insert(conn)).await.map_err(SchedulerError)
    }

    /// Withdrawing an unknown check is not an error.
    async fn cancel(&self, check: &Check) -> Result<(), SchedulerError> {
        self.delete(check).await
    }
}
