//! The study's append-only journal (`journal.jsonl`): one JSON line per thing that
//! happened. Any process rebuilds the study's state by replaying it.
//!
//! Contract: every change goes through [`Journal::transact`], which holds a lock
//! file made with create-new (atomic on local disks and on NFS, unlike `fcntl`
//! locks) while it reads the journal, decides and appends; so two workers never
//! claim the same trial. A lock left by a killed process is broken at once when
//! it names a dead process on this host, else after [`STALE_LOCK`]. Lines are written whole and synced; an append that fails (disk
//! full) is cut back to where it began, and a torn last line (a process killed
//! mid-write) is ignored on reading ([`Journal::read_noting`] says so).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// A lock older than this belongs to a dead process.
pub const STALE_LOCK: Duration = Duration::from_secs(30);

/// Who runs a trial: a process on a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// The machine's name.
    pub host: String,
    /// The process id there.
    pub pid: u32,
}

impl Owner {
    /// This process.
    pub fn me() -> Self {
        Self {
            host: std::fs::read_to_string("/etc/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "localhost".into()),
            pid: std::process::id(),
        }
    }
}

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Entry {
    /// A trial was chosen: its settings.
    Sampled {
        /// Trial number.
        id: usize,
        /// `--set` path -> value text.
        params: BTreeMap<String, String>,
    },
    /// A worker began training the trial up to `epochs` (None: to its end).
    Started {
        /// Trial number.
        id: usize,
        /// Where it stops (ASHA rungs), None for the whole run.
        epochs: Option<usize>,
        /// Who runs it.
        owner: Owner,
    },
    /// The trial reached an ASHA rung with these objective values.
    Reported {
        /// Trial number.
        id: usize,
        /// Epochs trained.
        epochs: usize,
        /// One value per objective (None: not measured).
        values: Vec<Option<f64>>,
        /// Wall seconds so far.
        wall_seconds: f64,
    },
    /// The trial ran to its end.
    Finished {
        /// Trial number.
        id: usize,
        /// One value per objective.
        values: Vec<Option<f64>>,
        /// Wall seconds in total.
        wall_seconds: f64,
        /// Epochs trained.
        epochs: f64,
    },
    /// ASHA stopped the trial at its last rung (not among the best).
    Stopped {
        /// Trial number.
        id: usize,
    },
    /// Population-based training: at `epochs`, these members took a better
    /// member's weights and perturbed settings (possibly none moved).
    Generation {
        /// Where every member stood.
        epochs: usize,
        /// Who copied whom.
        moves: Vec<Move>,
    },
    /// Its worker was asked to stop (SIGTERM, SLURM's time limit): the trial
    /// waits at its newest checkpoint for another worker, toward `epochs`.
    Released {
        /// Trial number.
        id: usize,
        /// Where it was going (None: to its end).
        epochs: Option<usize>,
    },
    /// The trial could not run or diverged.
    Failed {
        /// Trial number.
        id: usize,
        /// Why.
        reason: String,
    },
}

/// One member of a PBT population replaced by a copy of a better one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Move {
    /// The member that copies.
    pub id: usize,
    /// The member copied.
    pub from: usize,
    /// Its settings from now on.
    pub params: BTreeMap<String, String>,
}

/// The journal of one study folder.
#[derive(Debug, Clone)]
pub struct Journal {
    path: PathBuf,
}

impl Journal {
    /// The journal in `dir`.
    pub fn new(dir: &Path) -> Self {
        Self {
            path: dir.join("journal.jsonl"),
        }
    }

    /// Every entry so far.
    pub fn read(&self) -> std::io::Result<Vec<Entry>> {
        Ok(self.read_text()?.0)
    }

    /// Every entry so far, and a line for the user when the file ends in a torn
    /// line (a process killed while appending; the line is skipped).
    pub fn read_noting(&self) -> std::io::Result<(Vec<Entry>, Option<String>)> {
        let (entries, torn) = self.read_text()?;
        let note = torn.then(|| {
            format!(
                "{} ends in an incomplete line (a worker was killed while writing it); it is skipped",
                self.path.display()
            )
        });
        Ok((entries, note))
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The entries, and whether the file ends in a torn line.
    fn read_text(&self) -> std::io::Result<(Vec<Entry>, bool)> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => Ok((
                text.lines()
                    .filter_map(|l| serde_json::from_str(l).ok())
                    .collect(),
                !text.is_empty() && !text.ends_with('\n'),
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((Vec::new(), false)),
            Err(e) => Err(e),
        }
    }

    /// Appends entries without a decision to make.
    pub fn append(&self, entries: &[Entry]) -> std::io::Result<()> {
        self.transact(|_| Ok::<_, std::io::Error>((entries.to_vec(), ())))
    }

    /// Under the lock: reads every entry, lets `decide` return what to append
    /// (and a result), appends it.
    pub fn transact<T, E: From<std::io::Error>>(
        &self,
        decide: impl FnOnce(&[Entry]) -> Result<(Vec<Entry>, T), E>,
    ) -> Result<T, E> {
        let _lock = Lock::take(&self.path.with_extension("lock"))?;
        let (entries, torn) = self.read_text()?;
        let (new, out) = decide(&entries)?;
        if !new.is_empty() {
            // A torn line stays a line of its own, never glued to a new one.
            let mut text = if torn { vec![b'\n'] } else { Vec::new() };
            for e in &new {
                serde_json::to_writer(&mut text, e).map_err(std::io::Error::other)?;
                text.push(b'\n');
            }
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            let before = f.metadata()?.len();
            if let Err(e) = f.write_all(&text).and_then(|()| f.sync_all()) {
                // Whole lines or nothing: cut a partial append off again (a
                // shorter file needs no new space).
                let _ = f.set_len(before);
                let _ = f.sync_all();
                return Err(e.into());
            }
        }
        Ok(out)
    }
}

/// A held lock file; removed on drop.
struct Lock {
    path: PathBuf,
}

impl Lock {
    fn take(path: &Path) -> std::io::Result<Self> {
        Self::take_within(path, 2 * STALE_LOCK)
    }

    /// Takes the lock, waiting while another holds it, at most `give_up` (tests
    /// give a short one).
    fn take_within(path: &Path, give_up: Duration) -> std::io::Result<Self> {
        let began = SystemTime::now();
        loop {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
            {
                Ok(mut f) => {
                    let me = Owner::me();
                    let _ = writeln!(f, "{} {}", me.host, me.pid);
                    return Ok(Self {
                        path: path.to_path_buf(),
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    if break_if_dead(path) {
                        continue;
                    }
                    let age = std::fs::metadata(path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok());
                    if age.is_some_and(|a| a > STALE_LOCK) {
                        let _ = std::fs::remove_file(path);
                        continue;
                    }
                    if began.elapsed().unwrap_or_default() > give_up {
                        return Err(std::io::Error::other(format!(
                            "{} stays locked; if no trainlab works on this study, delete it",
                            path.display()
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Removes the lock at `path` when it names a process on this host that is gone
/// (killed while it held the lock); true when it did. It is first renamed to a
/// name of this process's own, so two processes never both break it, and put
/// back should it turn out to be a live one taken meanwhile.
fn break_if_dead(path: &Path) -> bool {
    let dead = |text: &str| {
        let me = Owner::me();
        let mut words = text.split_whitespace();
        let (Some(host), Some(pid)) = (
            words.next(),
            words.next().and_then(|p| p.parse::<u32>().ok()),
        ) else {
            return false;
        };
        host == me.host && pid != me.pid && !Path::new(&format!("/proc/{pid}")).exists()
    };
    if !std::fs::read_to_string(path).is_ok_and(|t| dead(&t)) {
        return false;
    }
    let aside = path.with_extension(format!("lock.dead{}", std::process::id()));
    if std::fs::rename(path, &aside).is_err() {
        return false;
    }
    if !std::fs::read_to_string(&aside).is_ok_and(|t| dead(&t)) {
        // Someone else's live lock: put it back (unless a newer one is there).
        let _ = std::fs::hard_link(&aside, path);
    }
    let _ = std::fs::remove_file(&aside);
    true
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_appending_at_once_lose_nothing_and_torn_lines_are_skipped() {
        let dir = tempfile::tempdir().expect("tmp");
        let j = Journal::new(dir.path());
        std::thread::scope(|s| {
            for t in 0..4 {
                let j = j.clone();
                s.spawn(move || {
                    for i in 0..25 {
                        j.append(&[Entry::Failed {
                            id: t * 100 + i,
                            reason: "x".into(),
                        }])
                        .expect("append");
                    }
                });
            }
        });
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("journal.jsonl"))
            .expect("open");
        f.write_all(b"{\"op\":\"fail").expect("torn line");
        j.append(&[Entry::Stopped { id: 7 }])
            .expect("append after a torn line");
        let entries = j.read().expect("read");
        assert_eq!(entries.len(), 101);
        assert_eq!(entries.last(), Some(&Entry::Stopped { id: 7 }));
        assert!(
            !dir.path().join("journal.lock").exists(),
            "the lock is released"
        );
    }

    #[test]
    fn a_lock_left_by_a_dead_process_on_this_host_is_broken_at_once() {
        let dir = tempfile::tempdir().expect("tmp");
        let j = Journal::new(dir.path());
        let mut child = std::process::Command::new("true").spawn().expect("spawn");
        let dead = child.id();
        child.wait().expect("reaped");
        let me = Owner::me();
        std::fs::write(
            dir.path().join("journal.lock"),
            format!("{} {dead}\n", me.host),
        )
        .expect("lock");
        let began = std::time::Instant::now();
        j.append(&[Entry::Stopped { id: 1 }]).expect("append");
        assert!(
            began.elapsed() < Duration::from_secs(5),
            "waited {:?} for a dead process's lock",
            began.elapsed()
        );
        assert_eq!(j.read().expect("read"), vec![Entry::Stopped { id: 1 }]);
    }

    #[test]
    fn a_missing_journal_is_empty_and_an_unreadable_one_an_error() {
        let dir = tempfile::tempdir().expect("tmp");
        let j = Journal::new(dir.path());
        assert_eq!(j.path(), dir.path().join("journal.jsonl"));
        assert_eq!(j.read().expect("no journal yet"), []);
        assert_eq!(j.read_noting().expect("no journal yet"), (vec![], None));
        std::fs::create_dir(j.path()).expect("mkdir");
        assert!(
            j.read().is_err(),
            "a journal that cannot be read is an error, not an empty study"
        );
    }

    #[test]
    fn whole_lines_are_appended_and_only_a_torn_last_line_is_noted() {
        let dir = tempfile::tempdir().expect("tmp");
        let j = Journal::new(dir.path());
        j.append(&[Entry::Stopped { id: 1 }]).expect("append");
        j.append(&[Entry::Stopped { id: 2 }, Entry::Stopped { id: 3 }])
            .expect("append");
        assert_eq!(
            std::fs::read_to_string(j.path()).expect("read"),
            "{\"op\":\"stopped\",\"id\":1}\n{\"op\":\"stopped\",\"id\":2}\n{\"op\":\"stopped\",\"id\":3}\n"
        );
        let three: Vec<Entry> = (1..=3).map(|id| Entry::Stopped { id }).collect();
        assert_eq!(j.read_noting().expect("read"), (three.clone(), None));
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(j.path())
            .expect("open");
        f.write_all(b"{\"op\":\"sto").expect("torn line");
        assert_eq!(
            j.read_noting().expect("read"),
            (
                three,
                Some(format!(
                    "{} ends in an incomplete line (a worker was killed while writing it); it is skipped",
                    j.path().display()
                ))
            )
        );
    }

    #[test]
    fn a_fresh_lock_of_another_host_is_waited_for_and_a_stale_one_broken() {
        let dir = tempfile::tempdir().expect("tmp");
        let j = Journal::new(dir.path());
        let lock = dir.path().join("journal.lock");
        // A process id that is not alive here: only this host's are looked up.
        let mut child = std::process::Command::new("true").spawn().expect("spawn");
        let gone = child.id();
        child.wait().expect("reaped");
        let text = format!("elsewhere {gone}\n");
        std::fs::write(&lock, &text).expect("lock");
        std::thread::scope(|s| {
            let waiting = s.spawn(|| j.append(&[Entry::Stopped { id: 2 }]));
            std::thread::sleep(Duration::from_millis(500));
            assert!(!waiting.is_finished(), "a fresh lock is waited for");
            assert_eq!(std::fs::read_to_string(&lock).expect("lock"), text);
            assert_eq!(j.read().expect("read"), []);
            std::fs::remove_file(&lock).expect("unlock");
            waiting
                .join()
                .expect("joined")
                .expect("appended once the lock is gone");
        });
        assert_eq!(j.read().expect("read"), [Entry::Stopped { id: 2 }]);
        // The same lock, last touched 40 s ago (over STALE_LOCK): broken at once.
        std::fs::write(&lock, &text).expect("lock");
        std::fs::File::options()
            .write(true)
            .open(&lock)
            .expect("open")
            .set_modified(SystemTime::now() - Duration::from_secs(40))
            .expect("touch");
        let began = std::time::Instant::now();
        j.append(&[Entry::Stopped { id: 3 }]).expect("append");
        assert!(
            began.elapsed() < Duration::from_secs(5),
            "waited {:?} for a stale lock",
            began.elapsed()
        );
        assert_eq!(
            j.read().expect("read"),
            [Entry::Stopped { id: 2 }, Entry::Stopped { id: 3 }]
        );
        assert!(!lock.exists(), "the lock is released");
    }

    /// A study folder that is gone: the lock cannot be made, and the append fails
    /// at once with the system's error (not after waiting for a lock that is not
    /// there).
    #[test]
    fn an_append_in_a_missing_folder_fails_at_once_with_the_systems_error() {
        let dir = tempfile::tempdir().expect("tmp");
        let j = Journal::new(&dir.path().join("gone"));
        let began = std::time::Instant::now();
        let err = j
            .append(&[Entry::Stopped { id: 1 }])
            .expect_err("no folder to lock in");
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound, "{err}");
        assert!(
            began.elapsed() < Duration::from_secs(5),
            "waited {:?} on a lock that cannot be made",
            began.elapsed()
        );
    }

    /// A lock that stays fresh (another host's, so not looked up here) is waited
    /// for until the time given, then the take fails naming the lock, which is
    /// left as it was (journal appends give 2 * STALE_LOCK).
    #[test]
    fn a_lock_held_past_the_time_given_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("tmp");
        let lock = dir.path().join("journal.lock");
        let text = format!("elsewhere {}\n", std::process::id());
        std::fs::write(&lock, &text).expect("lock");
        let began = std::time::Instant::now();
        let err = Lock::take_within(&lock, Duration::from_millis(300))
            .err()
            .expect("a lock held past the time given");
        let waited = began.elapsed();
        assert!(
            waited >= Duration::from_millis(300) && waited < Duration::from_secs(5),
            "gave up after {waited:?}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "{} stays locked; if no trainlab works on this study, delete it",
                lock.display()
            )
        );
        assert_eq!(std::fs::read_to_string(&lock).expect("lock"), text);
    }

    #[test]
    fn this_process_is_its_pid_on_this_host() {
        let me = Owner::me();
        assert_eq!(me.pid, std::process::id());
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
        assert_eq!(me.host, host);
        assert!(!me.host.is_empty());
    }
}
