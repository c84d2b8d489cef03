//! The lock of a local state: one apply (or destroy, or unlock) at a time.
//!
//! An exclusive `flock` on `<state>.lock`, which the kernel releases when
//! the holder dies, plus a lease written into the file: who holds it
//! (lock id, operation, user, host, pid, start) and until when. The holder
//! renews the lease from a heartbeat thread. A lock file whose flock is
//! free but whose lease is not marked released belonged to a holder that
//! died: the next run takes it over and says whose it was. On a file
//! system where a flock on another host is not seen, a lease from another
//! host is honoured until it expires. The file is kept (emptied) on
//! release: removing it would let two runs lock two different files.

use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::StateError;
use crate::clock::{now, parse_rfc3339, random_id, rfc3339};

/// Who holds a lock, as written in the lock file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// What `sovereign unlock` takes.
    pub id: String,
    /// `apply`, `destroy`.
    pub operation: String,
    pub who: String,
    pub host: String,
    pub pid: u32,
    /// RFC 3339, UTC.
    pub started: String,
    /// The lease: renewed by the holder while it runs.
    pub expires: String,
}

impl std::fmt::Display for LockInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "lock {} ({} by {} on {}, pid {}, since {}, lease until {})",
            self.id, self.operation, self.who, self.host, self.pid, self.started, self.expires
        )
    }
}

impl LockInfo {
    /// A new lock of this process, for `operation`, leased for `lease`.
    pub(crate) fn mine(operation: &str, lease: Lease) -> LockInfo {
        let secs = now();
        LockInfo {
            id: random_id()[..16].to_owned(),
            operation: operation.to_owned(),
            who: std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".into()),
            host: host(),
            pid: std::process::id(),
            started: rfc3339(secs),
            expires: rfc3339(secs + lease.duration.as_secs()),
        }
    }
}

/// A held lock; released when dropped.
pub struct StateLock {
    pub info: LockInfo,
    /// The holder a dead run left, taken over by this one.
    pub took_over: Option<LockInfo>,
    shared: Arc<Shared>,
    heartbeat: Option<std::thread::JoinHandle<()>>,
}

struct Shared {
    file: Mutex<std::fs::File>,
    stop: Mutex<bool>,
    wake: Condvar,
}

/// How long a lease lasts without renewal, and how often it is renewed.
#[derive(Clone, Copy, Debug)]
pub struct Lease {
    pub duration: Duration,
    pub renew_every: Duration,
}

impl Default for Lease {
    fn default() -> Lease {
        Lease { duration: Duration::from_secs(60), renew_every: Duration::from_secs(20) }
    }
}

impl StateLock {
    /// Takes the lock at `path` for `operation`, waiting up to `timeout`
    /// while another run holds it (`waiting` is told who, once).
    pub fn acquire(
        path: &Path,
        operation: &str,
        timeout: Duration,
        lease: Lease,
        mut waiting: impl FnMut(&LockInfo),
    ) -> Result<StateLock, StateError> {
        let started = Instant::now();
        let mut told = false;
        loop {
            let file = open(path)?;
            match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {
                    let previous = read_info(&file);
                    let foreign_lease = previous.as_ref().filter(|p| p.host != host() && !expired(p));
                    if foreign_lease.is_none() {
                        return StateLock::hold(file, operation, lease, previous);
                    }
                    // Free here, but leased by a run on another host: wait.
                }
                Err(rustix::io::Errno::WOULDBLOCK) => {}
                Err(e) => return Err(StateError(format!("cannot lock {}: {e}", path.display()))),
            }
            let holder = read_info(&file);
            drop(file);
            if let Some(holder) = &holder
                && !told
            {
                waiting(holder);
                told = true;
            }
            if started.elapsed() >= timeout {
                return Err(StateError(match holder {
                    Some(holder) => format!(
                        "the state is locked by {holder}; wait for it to finish (or pass a longer --lock-timeout), or if that run is gone for good, free it with `sovereign unlock {}`",
                        holder.id
                    ),
                    None => format!("the state is locked ({}) by a run that is starting; try again", path.display()),
                }));
            }
            std::thread::sleep(Duration::from_millis(100).min(timeout.saturating_sub(started.elapsed())));
        }
    }

    fn hold(
        file: std::fs::File,
        operation: &str,
        lease: Lease,
        previous: Option<LockInfo>,
    ) -> Result<StateLock, StateError> {
        let info = LockInfo::mine(operation, lease);
        write_info(&file, Some(&info)).map_err(|e| StateError(format!("cannot write the lock: {e}")))?;
        let shared = Arc::new(Shared { file: Mutex::new(file), stop: Mutex::new(false), wake: Condvar::new() });
        let heartbeat = {
            let (shared, mut info) = (shared.clone(), info.clone());
            std::thread::Builder::new()
                .name("state-lease".into())
                .spawn(move || {
                    let mut stop = shared.stop.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    loop {
                        let (guard, _) = shared
                            .wake
                            .wait_timeout(stop, lease.renew_every)
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        stop = guard;
                        if *stop {
                            return;
                        }
                        info.expires = rfc3339(now() + lease.duration.as_secs());
                        if let Ok(file) = shared.file.lock() {
                            let _ = write_info(&file, Some(&info));
                        }
                    }
                })
                .ok()
        };
        Ok(StateLock { info, took_over: previous, shared, heartbeat })
    }
}

impl Drop for StateLock {
    fn drop(&mut self) {
        if let Ok(mut stop) = self.shared.stop.lock() {
            *stop = true;
        }
        self.shared.wake.notify_all();
        if let Some(heartbeat) = self.heartbeat.take() {
            let _ = heartbeat.join();
        }
        // Emptied while still locked: released, not left by a dead run.
        if let Ok(file) = self.shared.file.lock() {
            let _ = write_info(&file, None);
        }
    }
}

/// `sovereign unlock ID`: frees a lock whose holder is gone. A holder
/// that runs keeps its lock: stop it first.
pub fn unlock(path: &Path, id: &str) -> Result<LockInfo, StateError> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(StateError(format!("no lock is held ({} does not exist)", path.display())));
        }
        Err(e) => return Err(StateError(format!("cannot read {}: {e}", path.display()))),
    };
    let info = read_info(&file);
    match (&info, rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive)) {
        (None, _) => Err(StateError("no lock is held".to_owned())),
        (Some(info), _) if info.id != id => {
            Err(StateError(format!("the state's lock is {info}, whose id is not {id}: check the id")))
        }
        (Some(info), Ok(())) if !holder_is_gone(info) => Err(StateError(format!(
            "{info} is held from {} and its lease has not expired: stop that run first, or wait until its lease ends",
            info.host
        ))),
        (Some(info), Err(rustix::io::Errno::WOULDBLOCK)) => Err(StateError(format!(
            "{info} is held by a process that is running; stop it first (pid {} on {}): unlock frees only a lock whose holder is gone",
            info.pid, info.host
        ))),
        (Some(info), Err(e)) => Err(StateError(format!("cannot lock {} to free {info}: {e}", path.display()))),
        (Some(info), Ok(())) => {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(|e| StateError(format!("cannot write {}: {e}", path.display())))?;
            write_info(&file, None).map_err(|e| StateError(format!("cannot write {}: {e}", path.display())))?;
            Ok(info.clone())
        }
    }
}

/// Who holds the lock at `path`, if anyone has it or left it.
#[must_use]
pub fn holder(path: &Path) -> Option<LockInfo> {
    std::fs::File::open(path).ok().and_then(|file| read_info(&file))
}

/// Whether the process a lock names is gone: on this host, its pid does
/// not exist; elsewhere, its lease expired.
#[must_use]
pub fn holder_is_gone(info: &LockInfo) -> bool {
    if info.host == host() {
        let Some(pid) = i32::try_from(info.pid).ok().and_then(rustix::process::Pid::from_raw) else {
            return true;
        };
        matches!(rustix::process::test_kill_process(pid), Err(rustix::io::Errno::SRCH))
    } else {
        expired(info)
    }
}

fn expired(info: &LockInfo) -> bool {
    parse_rfc3339(&info.expires).is_none_or(|until| until <= now())
}

fn host() -> String {
    rustix::system::uname().nodename().to_string_lossy().into_owned()
}

fn open(path: &Path) -> Result<std::fs::File, StateError> {
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| StateError(format!("cannot create {}: {e}", dir.display())))?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| StateError(format!("cannot open the lock {}: {e}", path.display())))
}

fn read_info(file: &std::fs::File) -> Option<LockInfo> {
    let mut text = String::new();
    let mut reader = file;
    reader.rewind().ok()?;
    reader.take(64 * 1024).read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

/// Replaces the file's contents with `info` (or nothing, when released).
fn write_info(file: &std::fs::File, info: Option<&LockInfo>) -> std::io::Result<()> {
    let text = info.map(|info| serde_json::to_string(info).unwrap_or_default() + "\n").unwrap_or_default();
    // Written over the old text, then cut to length: the file is never
    // empty while a lease is renewed (a reader would take it as released).
    let mut writer = file;
    writer.rewind()?;
    writer.write_all(text.as_bytes())?;
    writer.set_len(text.len() as u64)?;
    writer.sync_data()
}

/// The lock path of a state file (`<state>.lock`).
#[must_use]
pub fn lock_path(state: &Path) -> PathBuf {
    super::LocalState::new(state.to_owned()).lock_path()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick() -> Lease {
        Lease { duration: Duration::from_secs(2), renew_every: Duration::from_millis(50) }
    }

    #[test]
    fn a_second_holder_waits_then_fails_naming_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json.lock");
        let first = StateLock::acquire(&path, "apply", Duration::ZERO, quick(), |_| {}).unwrap();
        assert!(first.took_over.is_none());
        let mut seen = None;
        let started = Instant::now();
        let Err(error) =
            StateLock::acquire(&path, "apply", Duration::from_millis(300), quick(), |h| seen = Some(h.clone()))
        else {
            panic!("locked twice")
        };
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert_eq!(seen.as_ref(), Some(&first.info));
        assert!(error.0.contains(&first.info.id) && error.0.contains("sovereign unlock"), "{error}");
        // The id of another lock does not free it, and a live holder keeps it.
        assert!(unlock(&path, "0000").unwrap_err().0.contains("not 0000"));
        assert!(unlock(&path, &first.info.id).unwrap_err().0.contains("running"));
        drop(first);
        assert_eq!(holder(&path), None, "released locks leave no holder");
        let second = StateLock::acquire(&path, "destroy", Duration::ZERO, quick(), |_| {}).unwrap();
        assert!(second.took_over.is_none());
    }

    #[test]
    fn the_lease_is_renewed_while_held() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let lease = Lease { duration: Duration::from_secs(30), renew_every: Duration::from_millis(20) };
        let lock = StateLock::acquire(&path, "apply", Duration::ZERO, lease, |_| {}).unwrap();
        let first = holder(&path).unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        let later = holder(&path).unwrap();
        assert_eq!(later.id, lock.info.id);
        assert!(parse_rfc3339(&later.expires) > parse_rfc3339(&first.expires), "{first:?} {later:?}");
    }

    #[test]
    fn a_dead_holders_lock_is_taken_over_and_can_be_freed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        // What a run killed with SIGKILL leaves: its lease, no flock.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let dead = LockInfo {
            id: "deadbeefdeadbeef".into(),
            operation: "apply".into(),
            who: "ci".into(),
            host: host(),
            pid,
            started: rfc3339(now() - 100),
            expires: rfc3339(now() + 3600),
        };
        write_info(&open(&path).unwrap(), Some(&dead)).unwrap();
        assert!(holder_is_gone(&dead));
        assert_eq!(unlock(&path, "deadbeefdeadbeef").unwrap(), dead);
        assert_eq!(holder(&path), None);
        write_info(&open(&path).unwrap(), Some(&dead)).unwrap();
        let lock = StateLock::acquire(&path, "apply", Duration::ZERO, quick(), |_| {}).unwrap();
        assert_eq!(lock.took_over.as_ref(), Some(&dead));
        assert!(!holder_is_gone(&lock.info));
    }

    #[test]
    fn a_lease_from_another_host_is_honoured_until_it_expires() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let mut other = LockInfo {
            id: "0123456789abcdef".into(),
            operation: "apply".into(),
            who: "ci".into(),
            host: "elsewhere.example".into(),
            pid: 1,
            started: rfc3339(now()),
            expires: rfc3339(now() + 3600),
        };
        write_info(&open(&path).unwrap(), Some(&other)).unwrap();
        let error = StateLock::acquire(&path, "apply", Duration::ZERO, quick(), |_| {}).err().unwrap();
        assert!(error.0.contains("elsewhere.example"), "{error}");
        other.expires = rfc3339(now() - 1);
        write_info(&open(&path).unwrap(), Some(&other)).unwrap();
        let lock = StateLock::acquire(&path, "apply", Duration::ZERO, quick(), |_| {}).unwrap();
        assert_eq!(lock.took_over, Some(other));
    }
}
