//! The migration lock: when several collectors start at once, one applies the pending migrations and
//! the others wait until they are recorded, then go on. Without it two collectors could both run a
//! backfill (`TRUNCATE` + `INSERT … SELECT`, migrations 0013/0015) and count the rollups twice.
//!
//! ClickHouse has no lock statement, but insert deduplication is a compare-and-set: every contender
//! inserts its own row into `schema_migrations_lock` with the same `insert_deduplication_token`
//! (`<db>:<first>-<last pending version>:<attempt>`), the server keeps only the first block (plain
//! MergeTree: `non_replicated_deduplication_window`; in cluster mode the table is replicated to every
//! node and the block ids live in Keeper, so this holds across nodes), and the contender whose row
//! is stored holds the lock. The holder adds a heartbeat row every [`HEARTBEAT`] (unique tokens);
//! a holder silent for [`LEASE`] (SIGKILLed, its host gone) is taken over by the next attempt, which
//! applies whatever is still pending (every migration is idempotent); a contender always joins the
//! newest attempt. Ages are measured by the server's clock, so the collectors' clocks do not matter.
//! Like any lease, it assumes a live holder refreshes it within the lease: a holder stalled for
//! longer than [`LEASE`] (a frozen VM) could overlap with the one that took over.

use std::future::Future;
use std::time::{Duration, Instant};

use clickhouse::Row;
use serde::Deserialize;

use super::schema::Migration;
use super::{Store, StoreError};

/// The lock table (next to the migrations table).
pub const LOCK_TABLE: &str = "schema_migrations_lock";
/// A holder whose last heartbeat is older than this is taken over.
const LEASE: Duration = Duration::from_secs(15);
/// How often the holder shows it is alive.
const HEARTBEAT: Duration = Duration::from_secs(3);
/// How often a waiter looks again.
const POLL: Duration = Duration::from_millis(250);
/// How long a contender waits to read the winning row of its attempt (replication lag).
const VISIBLE_WITHIN: Duration = Duration::from_secs(30);

/// The single-server `CREATE TABLE` of the lock (`settings`: the storage policy suffix).
pub(crate) fn create_table(db: &str, settings: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS `{db}`.{LOCK_TABLE} (Epoch String, Attempt UInt32, Holder String, \
         At DateTime64(3) DEFAULT now64(3)) ENGINE = MergeTree ORDER BY (Epoch, Attempt, At) \
         SETTINGS non_replicated_deduplication_window = 1000{settings}"
    )
}

#[derive(Row, Deserialize)]
struct Winner {
    #[serde(rename = "Holder")]
    holder: String,
    /// Milliseconds since the attempt's last row, by the server's clock.
    #[serde(rename = "Age")]
    age_ms: i64,
}

/// The held lock; its heartbeat stops when it is released or dropped.
pub(crate) struct Lock {
    heartbeat: tokio::task::JoinHandle<()>,
}

impl Lock {
    /// Stops the heartbeat (the lock is then simply stale: later epochs use other tokens).
    pub(crate) fn release(self) {}
}

impl Drop for Lock {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

/// This process, as a lock holder.
fn holder_id() -> String {
    let mut nonce = [0u8; 4];
    let _ = getrandom::fill(&mut nonce);
    format!("{}/{}/{}", crate::selfstats::instance_name(), std::process::id(), const_hex::encode(nonce))
}

async fn insert_row(
    admin: &Store,
    db: &str,
    epoch: &str,
    attempt: u32,
    holder: &str,
    token: &str,
) -> Result<(), StoreError> {
    let sql = format!("INSERT INTO `{db}`.{LOCK_TABLE} (Epoch, Attempt, Holder) VALUES (?, ?, ?)");
    let query = admin.client().query(&sql).bind(epoch).bind(attempt).bind(holder);
    Ok(query.with_setting("insert_deduplication_token", token).execute().await?)
}

/// The first row of an attempt and the age of its last, once one is readable.
async fn winner(admin: &Store, db: &str, epoch: &str, attempt: u32) -> Result<Option<Winner>, StoreError> {
    let sql = format!(
        "SELECT argMin(Holder, (At, Holder)) AS Holder, toInt64(dateDiff('millisecond', max(At), now64(3))) AS Age \
         FROM `{db}`.{LOCK_TABLE} WHERE Epoch = ? AND Attempt = ? HAVING count() > 0"
    );
    Ok(admin.client().query(&sql).bind(epoch).bind(attempt).fetch_optional().await?)
}

impl Lock {
    /// Takes the lock for `todo` (the pending migrations), or waits until another holder has applied
    /// them (`Ok(None)`; `pending` reads what is still pending).
    pub(crate) async fn acquire<F, Fut>(
        admin: &Store,
        db: &str,
        todo: &[&Migration],
        pending: F,
    ) -> Result<Option<Lock>, StoreError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Vec<&'static Migration>, StoreError>>,
    {
        let (first, last) = (todo.first().map_or(0, |m| m.version), todo.last().map_or(0, |m| m.version));
        let epoch = format!("{first}-{last}");
        let me = holder_id();
        let mut attempt = latest_attempt(admin, db, &epoch).await?;
        loop {
            let token = format!("promptlog-migrate:{db}:{epoch}:{attempt}");
            insert_row(admin, db, &epoch, attempt, &me, &token).await?;
            let seen_by = Instant::now() + VISIBLE_WITHIN;
            let won = loop {
                if let Some(w) = winner(admin, db, &epoch, attempt).await? {
                    break w;
                }
                if Instant::now() > seen_by {
                    return Err(StoreError::MigrationLock(format!("no lock row readable after {VISIBLE_WITHIN:?}")));
                }
                tokio::time::sleep(POLL).await;
            };
            // Winning an attempt another collector has since taken over (a retry after a failed
            // migration, say) is no win: join the newest attempt instead.
            let latest = latest_attempt(admin, db, &epoch).await?;
            if won.holder == me && latest == attempt {
                tracing::info!(epoch, attempt, "Took the migration lock.");
                let heartbeat = tokio::spawn(beat(admin.clone(), db.to_owned(), epoch, attempt, token, me));
                return Ok(Some(Lock { heartbeat }));
            }
            if latest > attempt {
                attempt = latest;
                continue;
            }
            tracing::info!(holder = won.holder, epoch, "Another collector applies the migrations; waiting.");
            attempt = loop {
                if pending().await?.is_empty() {
                    tracing::info!(epoch, "Migrations applied by another collector.");
                    return Ok(None);
                }
                let latest = latest_attempt(admin, db, &epoch).await?;
                if latest > attempt {
                    break latest;
                }
                let age = winner(admin, db, &epoch, attempt).await?.map_or(i64::MAX, |w| w.age_ms);
                if u128::try_from(age).unwrap_or(0) > LEASE.as_millis() {
                    tracing::warn!(epoch, attempt, age_ms = age, "The migration lock holder went silent; taking over.");
                    break attempt + 1;
                }
                tokio::time::sleep(POLL).await;
            };
        }
    }
}

/// The newest attempt at the lock of `epoch` (0 when there is none yet).
async fn latest_attempt(admin: &Store, db: &str, epoch: &str) -> Result<u32, StoreError> {
    let sql = format!("SELECT max(Attempt) FROM `{db}`.{LOCK_TABLE} WHERE Epoch = ?");
    Ok(admin.client().query(&sql).bind(epoch).fetch_one().await?)
}

/// The holder's heartbeat: a row every [`HEARTBEAT`], each with its own token.
async fn beat(admin: Store, db: String, epoch: String, attempt: u32, token: String, me: String) {
    for n in 1u64.. {
        tokio::time::sleep(HEARTBEAT).await;
        if let Err(e) = insert_row(&admin, &db, &epoch, attempt, &me, &format!("{token}:beat:{n}")).await {
            tracing::warn!(error = %e, "Cannot refresh the migration lock.");
        }
    }
}
