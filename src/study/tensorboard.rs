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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runs::tensorboard_proto::HParamsPluginData;
    use crate::spec::{
        BaseSpec, Figure, LoadedStudy, Objective, Parallel, Search, StudySpec, from_ron_str,
    };
    use crate::study::{Entry, Journal};

    /// The events of the one event file in `dir`, after its version record
    /// (records: length, its checksum, the event, its checksum).
    fn events_in(dir: &Path) -> Vec<Event> {
        let files: Vec<_> = std::fs::read_dir(dir)
            .expect("folder")
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("events.out.tfevents.")
            })
            .collect();
        assert_eq!(files.len(), 1, "{}", dir.display());
        let bytes = std::fs::read(files[0].path()).expect("event file");
        let mut events = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let len = u64::from_le_bytes(bytes[at..at + 8].try_into().expect("length")) as usize;
            events.push(Event::decode(&bytes[at + 12..at + 12 + len]).expect("an event"));
            at += 12 + len + 4;
        }
        events.remove(0);
        events
    }

    fn string(s: &str) -> ProtoValue {
        ProtoValue {
            kind: Some(ProtoKind::StringValue(s.into())),
        }
    }

    fn number(x: f64) -> ProtoValue {
        ProtoValue {
            kind: Some(ProtoKind::NumberValue(x)),
        }
    }

    /// One trial's session: its settings, then its status, then its objectives'
    /// values when it has any.
    fn session(name: &str, hparams: &[(&str, ProtoValue)], status: i32, t: f64) -> Vec<Event> {
        let start = SessionStartInfo {
            hparams: hparams
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            group_name: name.into(),
            start_time_secs: t,
        };
        let end = SessionEndInfo {
            status,
            end_time_secs: t,
        };
        vec![
            hparams_event(
                "_hparams_/session_start_info",
                HParamsData::SessionStartInfo(start),
                t,
            ),
            hparams_event(
                "_hparams_/session_end_info",
                HParamsData::SessionEndInfo(end),
                t,
            ),
        ]
    }

    /// A finished, a failed and a waiting trial, one of whose settings is not a
    /// number in every trial: the HParams table gets each setting's type, each
    /// trial's values as numbers or text by that type, its status, and the
    /// objectives it has values for, under the study's objective tags.
    #[test]
    fn a_study_exports_each_trials_settings_status_and_objectives() {
        let tmp = tempfile::tempdir().expect("tmp");
        let (dir, out) = (tmp.path().join("s"), tmp.path().join("tb"));
        let base = from_ron_str(
            r#"(
    name: "points", seed: 1,
    dataset: Points(kind: Spiral, samples: 40, noise: 0.0, test_fraction: 0.5, features: [X1, X2]),
    model: [Linear(out: 8), Tanh, Linear(out: 1)],
    optimizer: Adam(lr: 0.03),
)"#,
            "points.ron",
        )
        .expect("a valid experiment");
        let out_choice = ["2", "4"]
            .map(|v| ron::from_str(v).expect("value"))
            .to_vec();
        let objectives = vec![
            Objective::Minimize(Figure::Parameters),
            Objective::Maximize(Figure::ValAccuracy),
        ];
        let study = LoadedStudy {
            spec: StudySpec {
                name: "tb".into(),
                base: BaseSpec::Inline(Box::default()),
                space: BTreeMap::from([(
                    "model.0.Linear.out".to_string(),
                    crate::spec::Param::Choice(out_choice),
                )]),
                search: Search::Grid,
                objectives: objectives.clone(),
                parallel: Parallel::Auto,
                seed: 1,
                trial_weights: Default::default(),
            },
            base,
        };
        super::super::create(&study, &dir).expect("study folder");
        // The journal as a study that ran would leave it (written here so the
        // settings can differ from the grid's: `wide` is no number).
        std::fs::remove_file(dir.join("journal.jsonl")).expect("the grid's journal");
        let sampled = |id, out: &str, lr: &str| Entry::Sampled {
            id,
            params: BTreeMap::from([
                ("model.0.Linear.out".to_string(), out.to_string()),
                ("optimizer.lr".to_string(), lr.to_string()),
            ]),
        };
        Journal::new(&dir)
            .append(&[
                sampled(0, "2", "0.5"),
                sampled(1, "4", "0.25"),
                sampled(2, "wide", "0.125"),
                Entry::Finished {
                    id: 0,
                    values: vec![Some(9.0), Some(0.75)],
                    wall_seconds: 1.0,
                    epochs: 1.0,
                },
                Entry::Failed {
                    id: 1,
                    reason: "diverged".into(),
                },
            ])
            .expect("journal");

        let exported = export(&dir, &out).expect("exported");
        assert_eq!(exported.runs, 3);
        let parents: Vec<_> = exported
            .files
            .iter()
            .map(|f| f.parent().expect("folder").to_path_buf())
            .collect();
        assert_eq!(
            parents,
            [
                out.clone(),
                out.join("0000"),
                out.join("0001"),
                out.join("0002")
            ]
        );

        let study_events = events_in(&out);
        let t = study_events[0].wall_time;
        let experiment = HpExperiment {
            name: "tb".into(),
            description: format!("trainlab study {}", dir.display()),
            time_created_secs: t,
            hparam_infos: vec![
                HParamInfo {
                    name: "model.0.Linear.out".into(),
                    r#type: HP_STRING,
                },
                HParamInfo {
                    name: "optimizer.lr".into(),
                    r#type: HP_FLOAT64,
                },
            ],
            metric_infos: ["objective/Parameters", "objective/ValAccuracy"]
                .iter()
                .zip(&objectives)
                .map(|(tag, o)| MetricInfo {
                    name: Some(MetricName {
                        group: String::new(),
                        tag: tag.to_string(),
                    }),
                    display_name: o.label(),
                })
                .collect(),
        };
        assert_eq!(
            study_events,
            [hparams_event(
                "_hparams_/experiment",
                HParamsData::Experiment(experiment),
                t
            )]
        );
        // The plugin's data decodes as what was meant (not only equal bytes).
        let Some(EventWhat::Summary(s)) = &study_events[0].what else {
            panic!("a summary")
        };
        let plugin = s.value[0]
            .metadata
            .as_ref()
            .and_then(|m| m.plugin_data.as_ref());
        let data = HParamsPluginData::decode(plugin.expect("plugin data").content.as_slice())
            .expect("hparams data");
        assert!(matches!(data.data, Some(HParamsData::Experiment(_))));

        let mut finished = session(
            "0000",
            &[
                ("model.0.Linear.out", string("2")),
                ("optimizer.lr", number(0.5)),
            ],
            STATUS_SUCCESS,
            t,
        );
        finished.push(Event {
            wall_time: t,
            step: 0,
            what: Some(EventWhat::Summary(Summary {
                value: vec![
                    scalar("objective/Parameters", 9.0),
                    scalar("objective/ValAccuracy", 0.75),
                ],
            })),
        });
        assert_eq!(events_in(&out.join("0000")), finished);
        assert_eq!(
            events_in(&out.join("0001")),
            session(
                "0001",
                &[
                    ("model.0.Linear.out", string("4")),
                    ("optimizer.lr", number(0.25)),
                ],
                STATUS_FAILURE,
                t,
            )
        );
        assert_eq!(
            events_in(&out.join("0002")),
            session(
                "0002",
                &[
                    ("model.0.Linear.out", string("wide")),
                    ("optimizer.lr", number(0.125)),
                ],
                STATUS_RUNNING,
                t,
            )
        );
    }
}
