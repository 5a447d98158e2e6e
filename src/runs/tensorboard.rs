//! TensorBoard event files for runs and studies, so `tensorboard --logdir runs/`
//! shows trainlab runs next to PyTorch ones.
//!
//! Contract:
//! - While a run records (unless `training.tensorboard: false`), every recorded
//!   event that has figures is appended to `RUN_DIR/tb/events.out.tfevents.*` as it
//!   happens: Step -> `train/loss`, `train/accuracy`, `train/lr`,
//!   `train/throughput`; Eval -> `<split>/loss`, `<split>/accuracy` (language
//!   models also `<split>/bits_per_token`, `<split>/perplexity`); Episodes ->
//!   `rl/...`; LayerStats -> per layer `layers/<i>_<kind>/activation` and
//!   `.../gradient` histograms (buckets between the recorded quantiles, see
//!   [`histogram`]), `.../grad_norm` and `.../dead_fraction` scalars; text
//!   samples, notes and failures -> text summaries. One scalar
//!   point per recorded event, so `train/loss` has exactly as many points as
//!   `metrics.jsonl` has Step records, with the same values (as f32).
//! - A resumed run rewrites `tb/` from its `metrics.jsonl` (already cut back to
//!   the checkpoint), then appends: the two never disagree.
//! - Logging is a side channel: a failed TensorBoard write turns logging off for
//!   the run with one warning, it never fails the run.
//! - [`export`] writes the same files for an older run, and for a study one run
//!   per trial plus the HParams plugin's records (the explored settings and the
//!   objectives), each file written whole (temp + rename).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message;

use super::tensorboard_proto::{
    DT_STRING, Event, EventWhat, HParamsData, HParamsPluginData, HistogramProto, PluginData,
    Summary, SummaryKind, SummaryMetadata, SummaryValue, TensorProto, record,
};
use super::{RunsError, files, read_events};
use crate::events::{Distribution, LayerStats, QUANTILE_LEVELS, TrainEvent};
use crate::spec::Experiment;

/// The folder inside a run that holds its event files.
pub const DIR: &str = "tb";

/// The TensorBoard events `event` becomes (none for events without figures).
pub fn events_of(event: &TrainEvent, wall_time: f64) -> Vec<Event> {
    let at = |step: u64, value: Vec<SummaryValue>| Event {
        wall_time,
        step: step as i64,
        what: Some(EventWhat::Summary(Summary { value })),
    };
    let one = |step: u64, v: SummaryValue| vec![at(step, vec![v])];
    match event {
        TrainEvent::Step(s) => vec![at(
            s.step,
            vec![
                scalar("train/loss", s.loss),
                scalar("train/accuracy", s.accuracy),
                scalar("train/lr", s.lr),
                scalar("train/throughput", s.samples_per_sec),
            ],
        )],
        TrainEvent::Eval(e) => {
            let split = e.split.name();
            let mut values = vec![
                scalar(&format!("{split}/loss"), e.loss),
                scalar(&format!("{split}/accuracy"), e.accuracy),
            ];
            if let Some(l) = &e.language {
                values.push(scalar(&format!("{split}/bits_per_token"), l.bits_per_token));
                values.push(scalar(&format!("{split}/perplexity"), l.perplexity));
            }
            vec![at(e.step, values)]
        }
        TrainEvent::Episodes(m) => {
            let mut values = vec![
                scalar("rl/mean_return", m.mean_return),
                scalar("rl/mean_length", m.mean_length),
                scalar("rl/epsilon", m.epsilon),
                scalar("rl/success_rate", m.success_rate),
                scalar("rl/moves_per_sec", m.steps_per_sec),
            ];
            if let Some(loss) = m.loss {
                values.push(scalar("rl/loss", loss));
            }
            vec![at(m.episode, values)]
        }
        TrainEvent::Sample(s) => one(
            s.step,
            text(
                "samples",
                &format!(
                    "**{}**{} *(temperature {})*",
                    s.prompt, s.text, s.temperature
                ),
            ),
        ),
        TrainEvent::LayerStats(l) => vec![at(l.step, layer_values(l))],
        TrainEvent::Note { step, message } => one(*step, text("notes", message)),
        TrainEvent::Failed { step, message, .. } => {
            one(*step, text("notes", &format!("failed: {message}")))
        }
        _ => Vec::new(),
    }
}

/// A LayerStats record as TensorBoard values: per layer `layers/<i>_<kind>/`
/// `activation` and `gradient` histograms, `grad_norm` and `dead_fraction`
/// scalars.
fn layer_values(stats: &LayerStats) -> Vec<SummaryValue> {
    let mut values = Vec::new();
    for l in &stats.layers {
        let tag = |what: &str| format!("layers/{}_{}/{what}", l.index, l.kind);
        values.push(histogram(&tag("activation"), &l.activation));
        if let Some(g) = &l.gradient {
            values.push(histogram(&tag("gradient"), g));
        }
        if let Some(n) = l.grad_norm {
            values.push(scalar(&tag("grad_norm"), n));
        }
        if let Some(d) = l.dead_fraction {
            values.push(scalar(&tag("dead_fraction"), d));
        }
    }
    values
}

/// A histogram made from a distribution's quantiles, honestly: its buckets are
/// the intervals between consecutive quantiles (minimum to 5 %, 5 % to 25 %, ...,
/// 95 % to the maximum), each holding the share of the values the quantiles put
/// there (5 %, 20 %, 25 %, 25 %, 20 %, 5 % of the count). How values spread
/// within a bucket is not recorded; TensorBoard draws each bucket evenly.
pub(crate) fn histogram(tag: &str, d: &Distribution) -> SummaryValue {
    let n = d.count as f64;
    let q = &d.quantiles;
    let mut bucket_limit = Vec::with_capacity(6);
    let mut bucket = Vec::with_capacity(6);
    for k in 1..q.len() {
        let share = QUANTILE_LEVELS[k] - QUANTILE_LEVELS[k - 1];
        // Equal quantiles (many equal values): the share joins the bucket
        // ending there, so limits stay strictly increasing.
        match bucket_limit.last() {
            Some(&last) if q[k] <= last => {
                if let Some(b) = bucket.last_mut() {
                    *b += share * n;
                }
            }
            _ => {
                bucket_limit.push(q[k]);
                bucket.push(share * n);
            }
        }
    }
    SummaryValue {
        tag: tag.into(),
        metadata: None,
        value: Some(SummaryKind::Histo(HistogramProto {
            min: d.min(),
            max: d.max(),
            num: n,
            sum: d.mean * n,
            sum_squares: d.rms * d.rms * n,
            bucket_limit,
            bucket,
        })),
    }
}

pub(crate) fn scalar(tag: &str, value: f64) -> SummaryValue {
    SummaryValue {
        tag: tag.into(),
        metadata: None,
        value: Some(SummaryKind::SimpleValue(value as f32)),
    }
}

/// A text summary: a string tensor for TensorBoard's text plugin (Markdown).
fn text(tag: &str, body: &str) -> SummaryValue {
    SummaryValue {
        tag: tag.into(),
        metadata: Some(plugin("text", Vec::new())),
        value: Some(SummaryKind::Tensor(TensorProto {
            dtype: DT_STRING,
            tensor_shape: Some(Default::default()),
            float_val: Vec::new(),
            string_val: vec![body.as_bytes().to_vec()],
        })),
    }
}

fn plugin(name: &str, content: Vec<u8>) -> SummaryMetadata {
    SummaryMetadata {
        plugin_data: Some(PluginData {
            plugin_name: name.into(),
            content,
        }),
    }
}

pub(crate) fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A fresh event file name in `dir` (TensorBoard reads `*tfevents*`).
fn event_file_name(dir: &Path, wall_time: f64) -> PathBuf {
    static FILES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = FILES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty() && !h.contains('/'))
        .unwrap_or_else(|| "localhost".into());
    dir.join(format!(
        "events.out.tfevents.{}.{host}.{}.{n}.trainlab",
        wall_time as u64,
        std::process::id()
    ))
}

/// The file's first record, which names the format version.
pub(crate) fn version_record(wall_time: f64) -> Vec<u8> {
    record(
        &Event {
            wall_time,
            step: 0,
            what: Some(EventWhat::FileVersion("brain.Event:2".into())),
        }
        .encode_to_vec(),
    )
}

/// Whether `dir` already holds event files.
fn has_event_files(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().contains("tfevents"))
    })
}

/// An event file being appended to while a run trains.
#[derive(Debug)]
struct EventFile {
    file: File,
}

impl EventFile {
    fn create(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let t = now();
        let mut file = File::create(event_file_name(dir, t))?;
        file.write_all(&version_record(t))?;
        Ok(Self { file })
    }

    /// Appends `events`, their records handed to the OS at once (one `write`
    /// for the four scalars of a Step, not four).
    fn append(&mut self, events: &[Event]) -> std::io::Result<()> {
        let mut bytes = Vec::new();
        for e in events {
            bytes.extend_from_slice(&record(&e.encode_to_vec()));
        }
        self.file.write_all(&bytes)
    }
}

/// The live TensorBoard log of a recording run (the run recorder's side channel).
#[derive(Debug)]
pub struct LiveLog {
    file: Option<EventFile>,
}

impl LiveLog {
    /// Starts `RUN_DIR/tb/` for a new run (nothing when `training.tensorboard` is off).
    pub fn start(run_dir: &Path, exp: &Experiment) -> Self {
        if !exp.training.tensorboard {
            return Self { file: None };
        }
        Self::open(EventFile::create(&run_dir.join(DIR)))
    }

    /// Rewrites `RUN_DIR/tb/` from the run's `metrics.jsonl` (cut back to the
    /// checkpoint being resumed) and continues it.
    pub fn resume(run_dir: &Path, exp: &Experiment) -> Self {
        if !exp.training.tensorboard {
            return Self { file: None };
        }
        let dir = run_dir.join(DIR);
        let rebuilt = (|| {
            if let Ok(entries) = std::fs::read_dir(&dir) {
                for e in entries.flatten() {
                    if e.file_name().to_string_lossy().contains("tfevents") {
                        std::fs::remove_file(e.path())?;
                    }
                }
            }
            let mut file = EventFile::create(&dir)?;
            let t = now();
            for event in read_events(run_dir)? {
                file.append(&events_of(&event, t))?;
            }
            Ok(file)
        })();
        Self::open(rebuilt)
    }

    fn open(file: std::io::Result<EventFile>) -> Self {
        match file {
            Ok(file) => Self { file: Some(file) },
            Err(e) => {
                eprintln!("warning: no TensorBoard log for this run: {e}");
                Self { file: None }
            }
        }
    }

    /// Appends what `event` shows in TensorBoard.
    pub fn record(&mut self, event: &TrainEvent) {
        let Some(file) = &mut self.file else { return };
        let events = events_of(event, now());
        if events.is_empty() {
            return;
        }
        if let Err(e) = file.append(&events) {
            eprintln!("warning: TensorBoard logging stopped for this run: {e}");
            self.file = None;
        }
    }
}

/// What [`export`] wrote.
#[derive(Debug, Clone)]
pub struct Exported {
    /// The event files.
    pub files: Vec<PathBuf>,
    /// Runs written (1 for a run, one per trial with a record for a study).
    pub runs: usize,
}

/// Refuses an output folder that already holds event files: TensorBoard would
/// show their points twice.
pub fn check_out(out: &Path) -> Result<(), RunsError> {
    if has_event_files(out) {
        return Err(RunsError::EventFilesExist {
            out: out.to_path_buf(),
        });
    }
    Ok(())
}

/// Writes TensorBoard files for the run in `from` into `out` as one event file.
/// `out` must not already hold event files. (A study's export lives in
/// `study::tensorboard`, which calls the pieces here.)
pub fn export(from: &Path, out: &Path) -> Result<Exported, RunsError> {
    check_out(out)?;
    if !from.join(files::METRICS).is_file() {
        return Err(RunsError::NotARun {
            dir: from.to_path_buf(),
        });
    }
    let path = write_run(from, out, Vec::new())?;
    Ok(Exported {
        files: vec![path],
        runs: 1,
    })
}

/// Writes the run in `run_dir` as one event file in `out`, with `extra` events
/// (a study's HParams records) first; returns its path.
pub(crate) fn write_run(
    run_dir: &Path,
    out: &Path,
    extra: Vec<Event>,
) -> Result<PathBuf, RunsError> {
    let events = read_events(run_dir).map_err(RunsError::io(run_dir))?;
    // The record has no clock: every point gets the time the record was last written.
    let t = std::fs::metadata(run_dir.join(files::METRICS))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
        .map_or_else(now, |d| d.as_secs_f64());
    let mut bytes = version_record(t);
    let recorded = events.iter().flat_map(|e| events_of(e, t));
    for e in extra.into_iter().chain(recorded) {
        bytes.extend(record(&e.encode_to_vec()));
    }
    write_file(out, t, &bytes)
}

pub(crate) fn write_file(dir: &Path, t: f64, bytes: &[u8]) -> Result<PathBuf, RunsError> {
    std::fs::create_dir_all(dir).map_err(RunsError::io(dir))?;
    let path = event_file_name(dir, t);
    crate::util::atomic::write_atomic(&path, bytes).map_err(RunsError::io(&path))?;
    Ok(path)
}

/// An HParams plugin record as a summary event.
pub(crate) fn hparams_event(tag: &str, data: HParamsData, wall_time: f64) -> Event {
    let content = HParamsPluginData {
        version: 0,
        data: Some(data),
    }
    .encode_to_vec();
    Event {
        wall_time,
        step: 0,
        what: Some(EventWhat::Summary(Summary {
            value: vec![SummaryValue {
                tag: tag.into(),
                metadata: Some(plugin("hparams", content)),
                // The plugin reads the metadata; the value is an empty tensor.
                value: Some(SummaryKind::Tensor(TensorProto {
                    dtype: super::tensorboard_proto::DT_FLOAT,
                    tensor_shape: Some(Default::default()),
                    float_val: vec![0.0],
                    string_val: Vec::new(),
                })),
            }],
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::StepMetrics;

    #[test]
    fn a_step_becomes_one_point_per_scalar_at_its_step() {
        let step = TrainEvent::Step(StepMetrics {
            step: 40,
            epoch: 0.5,
            loss: 0.25,
            accuracy: 0.9,
            lr: 1e-3,
            samples_per_sec: 1000.0,
            steps_covered: 10,
        });
        let events = events_of(&step, 1.0);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].step, 40);
        let Some(EventWhat::Summary(s)) = &events[0].what else {
            panic!("a summary: {events:?}")
        };
        let loss = s
            .value
            .iter()
            .find(|v| v.tag == "train/loss")
            .expect("loss");
        assert_eq!(loss.value, Some(SummaryKind::SimpleValue(0.25)));
        // Encoded and read back whole.
        let bytes = events[0].encode_to_vec();
        assert_eq!(Event::decode(bytes.as_slice()).expect("decodes"), events[0]);
    }
}
