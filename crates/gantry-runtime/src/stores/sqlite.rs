//! SQLite probe: open the file read-write (never create it), `PRAGMA quick_check` must say
//! `ok`, and with `rw = true` a write/read/delete round trip in the scratch table.
//!
//! Runs on the blocking pool; when the probe ends at its timeout, SQLite is interrupted
//! (`sqlite3_interrupt`) so a long check of a large file does not outlive the probe.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use std::sync::{Arc, Mutex};

use rusqlite::{Connection, InterruptHandle, OpenFlags};

use super::{SCRATCH_TABLE, random_token};

/// The database path of `sqlite://PATH`, `sqlite:PATH` or a plain `PATH`; relative paths
/// are taken from `base_dir`.
pub(super) fn resolve_path(url: &str, base_dir: &Path) -> PathBuf {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    // A query (`?mode=rwc`) is not part of the file name.
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    base_dir.join(path)
}

pub(super) async fn check(path: PathBuf, rw: bool, timeout: Duration) -> Result<String, String> {
    let handle: Arc<Mutex<Option<InterruptHandle>>> = Arc::default();
    // Dropped when the probe ends or is cut at its timeout: interrupts SQLite if it is
    // still working (a no-op on a connection that is already closed).
    let _guard = Interrupt(handle.clone());
    let deadline = Instant::now() + timeout;
    match tokio::task::spawn_blocking(move || check_blocking(&path, rw, deadline, &handle)).await {
        Ok(r) => r,
        Err(e) => Err(format!("the check panicked: {e}")),
    }
}

struct Interrupt(Arc<Mutex<Option<InterruptHandle>>>);

impl Drop for Interrupt {
    fn drop(&mut self) {
        if let Ok(h) = self.0.lock()
            && let Some(h) = h.as_ref()
        {
            h.interrupt();
        }
    }
}

fn check_blocking(
    path: &Path,
    rw: bool,
    deadline: Instant,
    interrupt: &Mutex<Option<InterruptHandle>>,
) -> Result<String, String> {
    if !path.exists() {
        return Err("the database file does not exist".into());
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| format!("cannot open: {e}"))?;
    if let Ok(mut h) = interrupt.lock() {
        *h = Some(conn.get_interrupt_handle());
    }
    let _ = conn.busy_timeout(deadline.saturating_duration_since(Instant::now()));
    if conn.is_readonly("main").unwrap_or(false) {
        return Err("opened read-only: the file or its directory is not writable".into());
    }
    let rows: Vec<String> = (|| {
        let mut stmt = conn.prepare("PRAGMA quick_check")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        rows.collect::<rusqlite::Result<Vec<String>>>()
    })()
    .map_err(|e| sql_error("PRAGMA quick_check", &e))?;
    if rows != ["ok"] {
        let shown: Vec<&str> = rows.iter().take(5).map(String::as_str).collect();
        let more = rows.len().saturating_sub(shown.len());
        let mut msg = format!("PRAGMA quick_check failed: {}", shown.join("; "));
        if more > 0 {
            msg.push_str(&format!(" (and {more} more)"));
        }
        return Err(msg);
    }
    if !rw {
        return Ok("quick_check ok".into());
    }
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {SCRATCH_TABLE} \
         (k TEXT PRIMARY KEY, v TEXT, at TEXT DEFAULT CURRENT_TIMESTAMP)"
    ))
    .map_err(|e| sql_error(&format!("creating table {SCRATCH_TABLE}"), &e))?;
    let key = format!("gantry-probe-{}", random_token());
    let value = random_token();
    conn.execute(
        &format!("INSERT INTO {SCRATCH_TABLE} (k, v) VALUES (?1, ?2)"),
        (&key, &value),
    )
    .map_err(|e| sql_error(&format!("inserting into {SCRATCH_TABLE}"), &e))?;
    let read: Option<String> = conn
        .query_row(
            &format!("SELECT v FROM {SCRATCH_TABLE} WHERE k = ?1"),
            [&key],
            |r| r.get(0),
        )
        .map(Some)
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            e => Err(e),
        })
        .map_err(|e| sql_error(&format!("reading back from {SCRATCH_TABLE}"), &e))?;
    let deleted = conn
        .execute(&format!("DELETE FROM {SCRATCH_TABLE} WHERE k = ?1"), [&key])
        .map_err(|e| sql_error(&format!("deleting from {SCRATCH_TABLE}"), &e))?;
    super::round_trip_result(read.as_deref(), &value, deleted as u64)?;
    Ok("quick_check ok, write/read/delete ok".into())
}

fn sql_error(what: &str, e: &rusqlite::Error) -> String {
    use rusqlite::ErrorCode as C;
    let code = e.sqlite_error_code();
    let hint = match code {
        Some(C::DatabaseCorrupt) => " (the database is corrupt)",
        Some(C::DatabaseBusy) | Some(C::DatabaseLocked) => " (locked by another connection)",
        Some(C::OperationInterrupted) => " (cut at the probe timeout)",
        Some(C::ReadOnly) => " (the database is read-only)",
        _ => "",
    };
    format!("{what}: {e}{hint}")
}
