//! A study for TensorBoard: each trial's run with its explored settings and
//! objectives, and the study's list of settings and objectives, as the HParams
//! plugin reads them (its table and parallel-coordinates view). The event-file
//! pieces come from `runs::tensorboard`; this file knows the study's journal.

use std::collections::BTreeMap;
use std::path::Path;

use prost::Message;

use super::StudySetupError;
use crate::runs::files;
use crate::runs::tensorboard::{
    Exported, check_out, hparams_event, now, scalar, version_record, write_file, write_run,
};
use crate::runs::tensorboard_proto::{
    Event, EventWhat, HP_FLOAT64, HP_STRING, HParamInfo, HParamsData, HpExperiment, MetricInfo,
    MetricName, ProtoKind, ProtoValue, STATUS_FAILURE, STATUS_RUNNING, STATUS_SUCCESS,
    SessionEndInfo, SessionStartInfo, Summary, SummaryValue, record,
};

/// Writes TensorBoard files for the study in `dir` into `out`: one run folder per
/// trial (`out/<trial>/`) with the HParams plugin's data, the study's own record
/// in `out`. `out` must not already hold event files.
pub fn export(dir: &Path, out: &Path) -> Result<Exported, StudySetupError> {
    check_out(out)?;
    export_study(dir, out)
}

/// A study: each trial's run with its settings and objectives, and the study's
/// list of settings and objectives for the HParams table.
fn export_study(dir: &Path, out: &Path) -> Result<Exported, StudySetupError> {
    let study = super::load(dir)?;
    let entries = super::Journal::new(dir)
        .read()
        .map_err(|source| StudySetupError::Journal {
            dir: dir.to_path_buf(),
            source,
        })?;
    let trials = super::replay(&entries);
    let t = now();
    let numeric = numeric_settings(&trials);
    let objectives: Vec<String> = study
        .spec
        .objectives
        .iter()
        .map(|o| format!("objective/{:?}", o.figure()))
        .collect();
    let experiment = hp_experiment(&study, dir, &numeric, &objectives, t);
    let mut written = vec![write_file(
        out,
        t,
        &[
            version_record(t),
            record(
                &hparams_event(
                    "_hparams_/experiment",
                    HParamsData::Experiment(experiment),
                    t,
                )
                .encode_to_vec(),
            ),
        ]
        .concat(),
    )?];
    let mut runs = 0;
    for trial in &trials {
        let run_dir = super::trial_dir(dir, trial.id);
        let name = format!("{:04}", trial.id);
        let extra = trial_events(trial, &name, &numeric, &objectives, t);
        let trial_out = out.join(&name);
        let path = if run_dir.join(files::METRICS).is_file() {
            write_run(&run_dir, &trial_out, extra)?
        } else {
            let mut bytes = version_record(t);
            for e in &extra {
                bytes.extend(record(&e.encode_to_vec()));
            }
            write_file(&trial_out, t, &bytes)?
        };
        written.push(path);
        runs += 1;
    }
    Ok(Exported {
        files: written,
        runs,
    })
}

/// Each explored setting, and whether it is a number (every trial's value reads
/// as one).
fn numeric_settings(trials: &[super::Trial]) -> BTreeMap<&str, bool> {
    let mut numeric: BTreeMap<&str, bool> = BTreeMap::new();
    for trial in trials {
        for (k, v) in &trial.params {
            let n = numeric.entry(k).or_insert(true);
            *n &= v.trim().parse::<f64>().is_ok();
        }
    }
    numeric
}

/// The study's settings and objectives, as the HParams table lists them.
fn hp_experiment(
    study: &crate::spec::LoadedStudy,
    dir: &Path,
    numeric: &BTreeMap<&str, bool>,
    objectives: &[String],
    t: f64,
) -> HpExperiment {
    HpExperiment {
        name: study.spec.name.clone(),
        description: format!("trainlab study {}", dir.display()),
        time_created_secs: t,
        hparam_infos: numeric
            .iter()
            .map(|(name, &num)| HParamInfo {
                name: (*name).into(),
                r#type: if num { HP_FLOAT64 } else { HP_STRING },
            })
            .collect(),
        metric_infos: study
            .spec
            .objectives
            .iter()
            .zip(objectives)
            .map(|(o, tag)| MetricInfo {
                name: Some(MetricName {
                    group: String::new(),
                    tag: tag.clone(),
                }),
                display_name: o.label(),
            })
            .collect(),
    }
}

/// One trial's session for the HParams plugin: its settings, its status and its
/// objectives' latest values.
fn trial_events(
    trial: &super::Trial,
    name: &str,
    numeric: &BTreeMap<&str, bool>,
    objectives: &[String],
    t: f64,
) -> Vec<Event> {
    let hparams = trial
        .params
        .iter()
        .map(|(k, v)| {
            let kind = match v.trim().parse::<f64>() {
                Ok(x) if numeric.get(k.as_str()).copied().unwrap_or(false) => {
                    ProtoKind::NumberValue(x)
                }
                _ => ProtoKind::StringValue(v.clone()),
            };
            (k.clone(), ProtoValue { kind: Some(kind) })
        })
        .collect();
    let status = match &trial.state {
        super::TrialState::Finished | super::TrialState::Stopped => STATUS_SUCCESS,
        super::TrialState::Failed(_) => STATUS_FAILURE,
        _ => STATUS_RUNNING,
    };
    let mut extra = vec![
        hparams_event(
            "_hparams_/session_start_info",
            HParamsData::SessionStartInfo(SessionStartInfo {
                hparams,
                group_name: name.to_string(),
                start_time_secs: t,
            }),
            t,
        ),
        hparams_event(
            "_hparams_/session_end_info",
            HParamsData::SessionEndInfo(SessionEndInfo {
                status,
                end_time_secs: t,
            }),
            t,
        ),
    ];
    // The objectives' latest values, as the scalars the table reads.
    let values: Vec<SummaryValue> = objectives
        .iter()
        .zip(&trial.values)
        .filter_map(|(tag, v)| v.map(|v| scalar(tag, v)))
        .collect();
    if !values.is_empty() {
        extra.push(Event {
            wall_time: t,
            step: 0,
            what: Some(EventWhat::Summary(Summary { value: values })),
        });
    }
    extra
}
