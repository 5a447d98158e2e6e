//! Leases: every process working on a study keeps `leases/<host>-<pid>` fresh
//! while it runs, so a trial claimed by a process on another machine (a SLURM
//! task on another node) that died without a word is taken up again once its
//! lease has not been renewed for [`LEASE`].
//!
//! Contract: on the claimer's own host a dead pid is enough (no wait); elsewhere
//! only the lease file's age counts, which tolerates clock skew well below
//! [`LEASE`]. A process that is merely frozen for longer than that loses its
//! trials too.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use super::journal::Owner;

/// A lease not renewed for this long has expired.
pub const LEASE: Duration = Duration::from_secs(120);
/// How often a working process renews its lease.
const BEAT: Duration = Duration::from_secs(10);

fn file(dir: &Path, owner: &Owner) -> PathBuf {
    dir.join("leases")
        .join(format!("{}-{}", owner.host, owner.pid))
}

/// Whether `owner` still works on the study in `dir`.
pub fn alive(dir: &Path, owner: &Owner) -> bool {
    let me = Owner::me();
    if owner.host == me.host {
        return owner.pid == me.pid || Path::new(&format!("/proc/{}", owner.pid)).exists();
    }
    std::fs::metadata(file(dir, owner))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age < LEASE)
}

/// This process's lease, renewed by a thread until dropped.
pub struct Heartbeat {
    stop: Arc<AtomicBool>,
    path: PathBuf,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Heartbeat {
    /// Takes the lease (written before this process claims anything).
    pub fn start(dir: &Path) -> std::io::Result<Self> {
        let path = file(dir, &Owner::me());
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, b"")?;
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, p) = (stop.clone(), path.clone());
        let thread = std::thread::spawn(move || {
            let mut waited = Duration::ZERO;
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                waited += Duration::from_millis(100);
                if waited >= BEAT {
                    waited = Duration::ZERO;
                    let _ = std::fs::write(&p, b"");
                }
            }
        });
        Ok(Self {
            stop,
            path,
            thread: Some(thread),
        })
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_elsewhere_lives_while_renewed_and_this_hosts_dead_pids_are_dead() {
        let dir = tempfile::tempdir().expect("tmp");
        let far = Owner {
            host: "another-node".into(),
            pid: 42,
        };
        assert!(!alive(dir.path(), &far), "no lease: gone");
        std::fs::create_dir_all(dir.path().join("leases")).expect("dir");
        let f = file(dir.path(), &far);
        std::fs::write(&f, b"").expect("lease");
        assert!(alive(dir.path(), &far), "a fresh lease");
        let old = SystemTime::now() - LEASE - Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&f)
            .and_then(|h| h.set_modified(old))
            .expect("age it");
        assert!(!alive(dir.path(), &far), "an expired lease");
        let me = Owner::me();
        assert!(alive(dir.path(), &me));
        let dead = Owner {
            pid: u32::MAX - 1,
            ..me
        };
        assert!(!alive(dir.path(), &dead));
        let beat = Heartbeat::start(dir.path()).expect("lease");
        assert!(file(dir.path(), &Owner::me()).exists());
        drop(beat);
        assert!(!file(dir.path(), &Owner::me()).exists(), "released on drop");
    }

    #[test]
    fn the_heartbeat_renews_the_lease_every_beat_not_sooner() {
        let dir = tempfile::tempdir().expect("tmp");
        let beat = Heartbeat::start(dir.path()).expect("lease");
        let f = file(dir.path(), &Owner::me());
        let old = SystemTime::now() - LEASE - Duration::from_secs(5);
        let age = || {
            std::fs::metadata(&f)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .expect("lease age")
        };
        std::fs::File::options()
            .write(true)
            .open(&f)
            .and_then(|h| h.set_modified(old))
            .expect("age it");
        std::thread::sleep(Duration::from_millis(500));
        assert!(age() > LEASE, "renewed before a beat was due");
        std::thread::sleep(BEAT + Duration::from_millis(1500));
        assert!(
            age() < Duration::from_secs(2),
            "not renewed after a beat: {:?}",
            age()
        );
        drop(beat);
    }

    #[test]
    fn another_live_process_on_this_host_is_alive_until_it_dies() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let other = Owner {
            pid: child.id(),
            ..Owner::me()
        };
        // No lease file: on this host the pid alone tells.
        let live = alive(dir.path(), &other);
        child.kill().expect("kill");
        child.wait().expect("reap");
        assert!(
            live,
            "a live process on this host (pid {}) counted as dead",
            other.pid
        );
        assert!(
            !alive(dir.path(), &other),
            "a dead, reaped process on this host (pid {}) counted as alive",
            other.pid
        );
    }
}
