//! The Study tab's state ([`StudyState`]), and the study folder as the GUI sees
//! it ([`StudyData`]), kept fresh while other processes fill it.
//!
//! Contract: all file reading happens on one background thread per open study
//! ([`StudyWatch`]): it stats the journal a few times a second and re-reads it
//! only when its length or modification time changed, and reads each trial's
//! `metrics.jsonl` incrementally from the last complete line (a torn last line
//! waits for the next pass; a file that shrank is read again from the start).
//! What it finds arrives as small [`Update`]s that [`StudyData::apply`] folds in
//! on the GUI thread, which then recomputes what the views draw (counts, best
//! trial, colours, parallel-coordinate positions) once per change, never per frame.
//! The thread ends when the watch is dropped.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use crossbeam_channel::{Receiver, Sender, unbounded};

use super::Page;
use super::curves::Metric;
use super::explore::ExploreState;
use super::pareto::ParetoState;
use super::runner::StudyRunner;
use super::scale::{Axis, ColorScale};
use super::table::TableState;
use crate::events::{Split, TrainEvent};
use crate::runs::files;
use crate::spec::{LoadedStudy, Objective};
use crate::study::{Journal, Trial, trial_dir};

/// How often the folder is looked at.
const POLL: Duration = Duration::from_millis(200);
/// At most this much of one metrics file is read per pass (big files arrive in
/// pieces, so a new study with long records shows up quickly).
const CHUNK: u64 = 4 << 20;
/// Training-loss points closer than this (in epochs) are merged into one.
const TRAIN_BUCKET: f64 = 0.02;

/// The Study tab's state: the open study (folder or file), the study this
/// window runs, and what the learner picked on each page.
#[derive(Default)]
pub struct StudyState {
    /// The open study folder, as far as read.
    pub data: Option<StudyData>,
    pub(super) watch: Option<StudyWatch>,
    /// A folder to start reading at the next poll.
    pub(super) opening: Option<PathBuf>,
    /// A study file opened but not run yet.
    pub file: Option<(PathBuf, LoadedStudy)>,
    pub(super) runner: Option<StudyRunner>,
    /// The newest progress lines of the study this window works on.
    pub progress: Vec<String>,
    /// How the last study this window worked on ended.
    pub outcome: Option<String>,
    /// The Explore panel.
    pub explore: ExploreState,
    /// The table's sort.
    pub table: TableState,
    /// The Pareto picks.
    pub pareto: ParetoState,
    /// The curve shown per trial.
    pub metric: Metric,
    /// The page shown.
    pub page: Page,
}

/// One point of a trial's record, as the curves need it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CurvePoint {
    /// Training loss.
    Train {
        /// Optimizer step.
        step: u64,
        /// Fractional epoch.
        epoch: f64,
        /// Loss.
        loss: f64,
    },
    /// A validation pass.
    Val {
        /// Optimizer step.
        step: u64,
        /// Fractional epoch.
        epoch: f64,
        /// Loss.
        loss: f64,
        /// Accuracy.
        accuracy: f64,
    },
    /// The run continued from a checkpoint at `step`: later points are redone.
    Restored {
        /// Step of the checkpoint.
        step: u64,
    },
}

/// What the watcher found.
#[derive(Debug, Clone)]
pub enum Update {
    /// The study file (read once). Boundary: the GUI shows the text.
    Study(Result<Box<LoadedStudy>, String>),
    /// The journal changed: every trial as it now stands.
    Trials(Vec<Trial>),
    /// A controller study's policy, re-read after each episode.
    Policy(Box<crate::spec::Policy>),
    /// New points of trial `id` (`reset`: its record was rewritten, start over).
    Points {
        /// Trial.
        id: usize,
        /// Forget what was read before.
        reset: bool,
        /// In record order.
        points: Vec<CurvePoint>,
    },
    /// Reading failed (the folder went away, the journal is unreadable).
    Error(String),
}

/// A series of (epoch, value) points with the step each was taken at.
#[derive(Debug, Clone, Default)]
pub struct Series {
    /// (epoch, value).
    pub points: Vec<[f64; 2]>,
    steps: Vec<u64>,
}

impl Series {
    fn push(&mut self, step: u64, epoch: f64, value: f64) {
        if value.is_finite() && epoch.is_finite() {
            self.points.push([epoch, value]);
            self.steps.push(step);
        }
    }

    /// Adds a training point, merged with the last one when it is within a bucket.
    fn push_merged(&mut self, step: u64, epoch: f64, value: f64) {
        if !(value.is_finite() && epoch.is_finite()) {
            return;
        }
        if let Some(last) = self.points.last_mut()
            && (epoch - last[0]).abs() < TRAIN_BUCKET
            && epoch >= last[0]
        {
            last[1] = 0.5 * (last[1] + value);
            if let Some(s) = self.steps.last_mut() {
                *s = step;
            }
            return;
        }
        self.push(step, epoch, value);
    }

    fn truncate_after(&mut self, step: u64) {
        let keep = self.steps.iter().take_while(|s| **s <= step).count();
        self.points.truncate(keep);
        self.steps.truncate(keep);
    }

    /// The last point, if any.
    pub fn last(&self) -> Option<[f64; 2]> {
        self.points.last().copied()
    }
}

/// A trial's curves over epochs.
#[derive(Debug, Clone, Default)]
pub struct TrialCurves {
    /// Validation accuracy.
    pub val_accuracy: Series,
    /// Validation loss.
    pub val_loss: Series,
    /// Training loss (merged into small epoch buckets).
    pub train_loss: Series,
}

impl TrialCurves {
    /// Folds `p` in.
    pub fn apply(&mut self, p: CurvePoint) {
        match p {
            CurvePoint::Train { step, epoch, loss } => {
                self.train_loss.push_merged(step, epoch, loss)
            }
            CurvePoint::Val {
                step,
                epoch,
                loss,
                accuracy,
            } => {
                self.val_loss.push(step, epoch, loss);
                self.val_accuracy.push(step, epoch, accuracy);
            }
            CurvePoint::Restored { step } => {
                self.val_accuracy.truncate_after(step);
                self.val_loss.truncate_after(step);
                self.train_loss.truncate_after(step);
            }
        }
    }
}

/// Trial counts for the summary line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts {
    /// Trained to the end.
    pub finished: usize,
    /// Stopped early by ASHA.
    pub stopped: usize,
    /// Training now.
    pub running: usize,
    /// Not started, or waiting at a rung.
    pub pending: usize,
    /// Could not run.
    pub failed: usize,
}

/// What the views draw, recomputed when the trials change.
#[derive(Debug, Clone, Default)]
pub struct Derived {
    /// Trial counts.
    pub counts: Counts,
    /// The best trial by the first objective and its value.
    pub best: Option<(usize, f64)>,
    /// Colour scale over the first objective's values.
    pub colors: ColorScale,
    /// Parallel-coordinate axes: every explored path, then every objective.
    pub axes: Vec<Axis>,
    /// Per trial (by position in `trials`): its place on each axis, 0..=1.
    pub positions: Vec<Vec<Option<f32>>>,
    /// Explored paths (the space's keys, in order).
    pub paths: Vec<String>,
}

/// A study folder's contents as far as read.
pub struct StudyData {
    /// The folder.
    pub dir: PathBuf,
    /// The study file, once read.
    pub study: Option<LoadedStudy>,
    /// Every trial, by id.
    pub trials: Vec<Trial>,
    /// Curves by trial id.
    pub curves: Vec<TrialCurves>,
    /// Precomputed for the views.
    pub derived: Derived,
    /// Bumped whenever anything changed (for the views' caches).
    pub generation: u64,
    /// The last reading problem.
    pub error: Option<String>,
    /// A controller study's policy as last written (`controller/policy.ron`).
    pub policy: Option<crate::spec::Policy>,
}

impl StudyData {
    /// Nothing read yet from `dir`.
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            study: None,
            trials: Vec::new(),
            curves: Vec::new(),
            derived: Derived::default(),
            generation: 0,
            error: None,
            policy: None,
        }
    }

    /// The objectives, once the study file is read.
    pub fn objectives(&self) -> &[Objective] {
        self.study
            .as_ref()
            .map_or(&[], |s| s.spec.objectives.as_slice())
    }

    /// Folds in what the watcher found; recomputes the derived data when needed.
    pub fn apply(&mut self, updates: Vec<Update>) {
        if updates.is_empty() {
            return;
        }
        let mut rederive = false;
        for u in updates {
            match u {
                Update::Study(Ok(s)) => {
                    self.study = Some(*s);
                    rederive = true;
                }
                Update::Study(Err(e)) | Update::Error(e) => self.error = Some(e),
                Update::Policy(p) => self.policy = Some(*p),
                Update::Trials(t) => {
                    self.trials = t;
                    self.error = None;
                    rederive = true;
                }
                Update::Points { id, reset, points } => {
                    if self.curves.len() <= id {
                        self.curves.resize_with(id + 1, TrialCurves::default);
                    }
                    let c = &mut self.curves[id];
                    if reset {
                        *c = TrialCurves::default();
                    }
                    for p in points {
                        c.apply(p);
                    }
                }
            }
        }
        if rederive {
            self.derived = derive(self.study.as_ref(), &self.trials);
        }
        self.generation += 1;
    }
}

/// Counts, best, colours and axis positions for `trials`.
pub fn derive(study: Option<&LoadedStudy>, trials: &[Trial]) -> Derived {
    let mut counts = Counts::default();
    for t in trials {
        match t.state.name() {
            "finished" => counts.finished += 1,
            "stopped" => counts.stopped += 1,
            "running" => counts.running += 1,
            "failed" => counts.failed += 1,
            _ => counts.pending += 1,
        }
    }
    let Some(study) = study else {
        return Derived {
            counts,
            ..Derived::default()
        };
    };
    let objectives = &study.spec.objectives;
    let first = objectives.first().copied();
    let value0 = |t: &Trial| {
        t.values
            .first()
            .copied()
            .flatten()
            .filter(|v| v.is_finite())
    };
    let best = first.and_then(|o| {
        trials
            .iter()
            .filter_map(|t| value0(t).map(|v| (t.id, v)))
            .max_by(|a, b| o.score(a.1).total_cmp(&o.score(b.1)))
    });
    let colors = ColorScale::over(first, trials.iter().filter_map(value0));
    let paths: Vec<String> = study.spec.space.keys().cloned().collect();
    let mut axes: Vec<Axis> = study
        .spec
        .space
        .iter()
        .map(|(path, param)| Axis::for_param(path, param, trials))
        .collect();
    for (i, o) in objectives.iter().enumerate() {
        axes.push(Axis::for_values(
            &o.label(),
            trials
                .iter()
                .filter_map(|t| t.values.get(i).copied().flatten()),
        ));
    }
    let positions = trials
        .iter()
        .map(|t| {
            let mut row: Vec<Option<f32>> = paths
                .iter()
                .zip(&axes)
                .map(|(p, a)| t.params.get(p).and_then(|v| a.position(v)))
                .collect();
            for (i, a) in axes.iter().enumerate().skip(paths.len()) {
                let v = t.values.get(i - paths.len()).copied().flatten();
                row.push(v.and_then(|v| a.position_of(v)));
            }
            row
        })
        .collect();
    Derived {
        counts,
        best,
        colors,
        axes,
        positions,
        paths,
    }
}

/// The background reader of one study folder; dropping it ends the thread.
pub struct StudyWatch {
    rx: Receiver<Update>,
    stop: Arc<AtomicBool>,
}

impl StudyWatch {
    /// Starts watching `dir`; `repaint` is called whenever something arrives.
    pub fn start(dir: &Path, repaint: impl Fn() + Send + 'static) -> Self {
        let (tx, rx) = unbounded();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let dir = dir.to_path_buf();
        let spawned = std::thread::Builder::new()
            .name("trainlab-gui-study".into())
            .spawn(move || watch(&dir, &tx, &flag, &repaint));
        if let Err(e) = spawned {
            let (tx, rx) = unbounded();
            let _ = tx.send(Update::Error(format!(
                "could not start a thread to read the study: {e}"
            )));
            return Self { rx, stop };
        }
        Self { rx, stop }
    }

    /// What arrived since the last call (never blocks).
    pub fn drain(&self) -> Vec<Update> {
        self.rx.try_iter().collect()
    }
}

impl Drop for StudyWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Where the reader stands in one metrics file.
#[derive(Default)]
struct Cursor {
    offset: u64,
}

fn watch(dir: &Path, tx: &Sender<Update>, stop: &AtomicBool, repaint: &dyn Fn()) {
    // A study being created by this window may not have its file yet: wait for it.
    while !dir.join(crate::study::STUDY_FILE).is_file() {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        std::thread::sleep(POLL);
    }
    let study = crate::study::load(dir)
        .map(Box::new)
        .map_err(|e| e.to_string());
    let study_ok = study.is_ok();
    if tx.send(Update::Study(study)).is_err() {
        return;
    }
    repaint();
    if !study_ok {
        return;
    }
    let journal = Journal::new(dir);
    let journal_path = dir.join("journal.jsonl");
    let mut seen: Option<(u64, SystemTime)> = None;
    let mut trials = 0usize;
    let mut cursors: Vec<Cursor> = Vec::new();
    let mut policy_seen = None;
    while !stop.load(Ordering::Relaxed) {
        let mut sent = false;
        let mut busy = false;
        if let Some(u) = policy_update(dir, &mut policy_seen) {
            sent |= tx.send(u).is_ok();
        }
        let stamp = std::fs::metadata(&journal_path)
            .ok()
            .map(|m| (m.len(), m.modified().unwrap_or(SystemTime::UNIX_EPOCH)));
        if stamp != seen {
            seen = stamp;
            match journal.read() {
                Ok(entries) => {
                    let t = crate::study::replay(&entries);
                    trials = t.len();
                    sent |= tx.send(Update::Trials(t)).is_ok();
                }
                Err(e) => {
                    sent |= tx
                        .send(Update::Error(format!("cannot read the journal: {e}")))
                        .is_ok();
                }
            }
        }
        cursors.resize_with(trials, Cursor::default);
        for (id, cursor) in cursors.iter_mut().enumerate() {
            let path = trial_dir(dir, id).join(files::METRICS);
            match read_new(&path, cursor) {
                Ok(None) => {}
                Ok(Some((reset, points, more))) => {
                    busy |= more;
                    if reset || !points.is_empty() {
                        sent |= tx.send(Update::Points { id, reset, points }).is_ok();
                    }
                }
                Err(_) => {} // not started yet
            }
        }
        if sent {
            repaint();
        }
        // A file still being caught up with is read on at once.
        std::thread::sleep(if busy { Duration::from_millis(5) } else { POLL });
    }
}

/// A controller study's policy when its file changed since `seen`.
fn policy_update(dir: &Path, seen: &mut Option<(u64, SystemTime)>) -> Option<Update> {
    let path = crate::study::controller::policy_path(dir);
    let stamp = std::fs::metadata(&path)
        .ok()
        .map(|m| (m.len(), m.modified().unwrap_or(SystemTime::UNIX_EPOCH)));
    if stamp.is_none() || stamp == *seen {
        return None;
    }
    *seen = stamp;
    // Written atomically: a read sees a whole file.
    match crate::spec::load_policy(&path) {
        Ok(p) => Some(Update::Policy(Box::new(p))),
        Err(e) => Some(Update::Error(e.to_string())),
    }
}

/// Reads what was appended to `path` since `cursor`: (reset, points, more to read).
fn read_new(
    path: &Path,
    cursor: &mut Cursor,
) -> std::io::Result<Option<(bool, Vec<CurvePoint>, bool)>> {
    let len = std::fs::metadata(path)?.len();
    let mut reset = false;
    if len < cursor.offset {
        cursor.offset = 0;
        reset = true;
    }
    if len == cursor.offset {
        return Ok(reset.then(|| (true, Vec::new(), false)));
    }
    let want = (len - cursor.offset).min(CHUNK);
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(cursor.offset))?;
    let mut buf = Vec::with_capacity(want as usize);
    file.take(want).read_to_end(&mut buf)?;
    // Only complete lines; a torn one waits for the next pass.
    let Some(end) = buf.iter().rposition(|b| *b == b'\n') else {
        let stuck = want == CHUNK; // one line longer than a chunk: skip it
        if stuck {
            cursor.offset += want;
        }
        return Ok(Some((reset, Vec::new(), stuck)));
    };
    cursor.offset += end as u64 + 1;
    let points = parse_points(&buf[..end]);
    Ok(Some((reset, points, cursor.offset < len)))
}

/// The curve points in complete JSON lines of a metrics file.
pub fn parse_points(bytes: &[u8]) -> Vec<CurvePoint> {
    bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| serde_json::from_slice::<TrainEvent>(l).ok())
        .filter_map(|e| match e {
            TrainEvent::Step(m) => Some(CurvePoint::Train {
                step: m.step,
                epoch: m.epoch,
                loss: m.loss,
            }),
            TrainEvent::Eval(m) if m.split == Split::Val => Some(CurvePoint::Val {
                step: m.step,
                epoch: m.epoch,
                loss: m.loss,
                accuracy: m.accuracy,
            }),
            TrainEvent::Restored { step, .. } => Some(CurvePoint::Restored { step }),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_read_incrementally_and_torn_lines_wait() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("m.jsonl");
        let step = |s: u64| {
            format!(
                "{{\"event\":\"Step\",\"step\":{s},\"epoch\":{},\"loss\":1.0,\"accuracy\":0.5,\"lr\":0.001,\"samples_per_sec\":1.0,\"steps_covered\":1}}\n",
                s as f64 / 10.0
            )
        };
        std::fs::write(&path, step(1) + &step(2)[..20]).expect("write");
        let mut c = Cursor::default();
        let (reset, pts, _) = read_new(&path, &mut c).expect("read").expect("some");
        assert!(!reset);
        assert_eq!(pts.len(), 1, "the torn second line waits");
        std::fs::write(&path, step(1) + &step(2) + &step(3)).expect("write");
        let (_, pts, _) = read_new(&path, &mut c).expect("read").expect("some");
        assert_eq!(pts.len(), 2, "the rest arrives once complete");
        assert!(read_new(&path, &mut c).expect("read").is_none());
        std::fs::write(&path, step(1)).expect("write");
        let (reset, pts, _) = read_new(&path, &mut c).expect("read").expect("some");
        assert!(reset && pts.len() == 1, "a shorter file is read again");
    }

    #[test]
    fn a_restore_drops_the_points_it_redoes() {
        let mut c = TrialCurves::default();
        for s in 1..=10u64 {
            c.apply(CurvePoint::Val {
                step: s,
                epoch: s as f64,
                loss: 1.0,
                accuracy: 0.5,
            });
        }
        c.apply(CurvePoint::Restored { step: 4 });
        assert_eq!(c.val_accuracy.points.len(), 4);
        assert_eq!(c.val_loss.last(), Some([4.0, 1.0]));
    }
}
