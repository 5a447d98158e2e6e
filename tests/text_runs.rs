//! End-to-end text runs on the bundled word lists: a language model whose loss
//! falls and whose samples are vocabulary text, language identification far above
//! chance, determinism, probes while paused, init_from/freeze, and fine-tuning
//! beating training from scratch at equal steps.

use std::path::Path;
use std::time::Duration;

use trainlab::spec::{
    BundledText, ClassificationSpec, DatasetSpec, Experiment, Language, LayerSpec, OptimizerSpec,
    TextDatasetSpec, TextSource, TextTask, TrainingSpec,
};
use trainlab::train::{Control, Probe, ProbeAnswer, StartOptions, TrainEvent, start};

fn lm(source: BundledText, steps_limit: usize, seed: u64) -> Experiment {
    Experiment {
        name: "test_lm".into(),
        seed,
        dataset: char_lm_data(source, steps_limit, 16, Some((20, 30))),
        model: embedding_lstm(16, 48),
        optimizer: OptimizerSpec::adam(1e-2),
        training: TrainingSpec {
            epochs: 1,
            batch_size: 16,
            log_every_steps: 10,
            eval_every_steps: Some(40),
            grad_clip_norm: Some(1.0),
            ..TrainingSpec::default()
        },
        ..Experiment::default()
    }
}

mod common;
use common::experiments::{char_lm_data, embedding_gru, embedding_lstm};
use common::{step_losses, summary};

/// Runs to the end, recording into `run_dir` when given.
fn run_all(exp: Experiment, run_dir: Option<&Path>) -> Vec<TrainEvent> {
    let options = StartOptions {
        run_dir: run_dir.map(Path::to_path_buf),
        ..StartOptions::default()
    };
    common::run_all(exp, options)
}

#[test]
fn char_lstm_loss_falls_and_samples_are_vocabulary_text() {
    let dir = tempfile::tempdir().expect("tmp");
    let run = dir.path().join("lm");
    let events = run_all(lm(BundledText::Words, 3000, 1), Some(&run));
    let s = summary(&events);
    let losses = step_losses(&events);
    assert!(losses.len() >= 3, "{losses:?}");
    assert!(losses[losses.len() - 1] < losses[0] * 0.8, "{losses:?}");
    let lang = s.language.expect("bits per char");
    assert!(lang.bits_per_token < 4.0, "{lang:?}");
    // Its throughput is in tokens: batch x window per step.
    let Some(TrainEvent::Started(info)) = events.first() else {
        panic!("Started first")
    };
    assert_eq!(info.step_items.unit, trainlab::events::ItemUnit::Tokens);
    assert_eq!(info.step_items.count, 16 * 16);
    let vocab = trainlab::data::text::Vocab::load(&run.join("vocab.json")).expect("vocab saved");
    // The model table's head is as wide as the vocabulary the text gave (not 0),
    // and its rows add up to the run's parameter count.
    let head = info.layers.last().expect("a head row");
    assert_eq!(head.output.last(), Some(&vocab.len()), "{head:?}");
    assert_eq!(
        info.layers.iter().map(|l| l.params).sum::<usize>(),
        info.parameters
    );
    let samples: Vec<&String> = events
        .iter()
        .filter_map(|e| match e {
            TrainEvent::Sample(t) => Some(&t.text),
            _ => None,
        })
        .collect();
    assert!(!samples.is_empty());
    for text in samples {
        assert_eq!(text.chars().count(), 30);
        assert!(
            !vocab.encode(text).contains(&trainlab::data::text::UNK),
            "{text:?}"
        );
    }
    // Samples are recorded with the run; the trained model loads back for the GUI.
    let record = std::fs::read_to_string(run.join("metrics.jsonl")).expect("metrics");
    assert!(record.contains("\"event\":\"Sample\""));
    let g = trainlab::infer::Generator::load(&run).expect("loads");
    let a = g.generate("ab", 0.8, Some(5), 20, 7).expect("generates");
    assert_eq!(a, g.generate("ab", 0.8, Some(5), 20, 7).expect("again"));
    assert_eq!(a.chars().count(), 20);
}

#[test]
fn same_seed_same_metrics() {
    let a = step_losses(&run_all(lm(BundledText::Words, 1000, 5), None));
    let b = step_losses(&run_all(lm(BundledText::Words, 1000, 5), None));
    assert!(!a.is_empty());
    assert_eq!(a, b);
}

#[test]
fn word_language_classifier_beats_chance_by_far() {
    let exp = Experiment {
        name: "test_lang".into(),
        dataset: DatasetSpec::Text(TextDatasetSpec {
            source: TextSource::Bundled(BundledText::WordLanguages),
            task: TextTask::Classification(ClassificationSpec {
                max_len: 16,
                ..ClassificationSpec::default()
            }),
            ..TextDatasetSpec::default()
        }),
        model: [embedding_gru(24, 48), vec![LayerSpec::LastStep]].concat(),
        optimizer: OptimizerSpec::adam(1e-2),
        training: TrainingSpec {
            epochs: 1,
            batch_size: 64,
            log_every_steps: 20,
            ..TrainingSpec::default()
        },
        ..Experiment::default()
    };
    let events = run_all(exp, None);
    let s = summary(&events);
    let acc = s.test_accuracy.expect("tested");
    // Chance is 1/6.
    println!(
        "word language test accuracy {acc:.3} after {} steps",
        s.steps
    );
    assert!(acc > 0.5, "test accuracy {acc}");
    // The references are computed on the same test split and reported with it.
    let b = s.baselines.expect("majority and naive Bayes references");
    println!("references: {b:?}");
    assert!(b.majority_accuracy < 0.25, "{b:?}");
    assert!(acc > b.majority_accuracy + 0.3, "{acc} vs {b:?}");
    assert!(b.naive_bayes_accuracy > b.majority_accuracy + 0.3, "{b:?}");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, TrainEvent::Note { message, .. }
            if message.contains("naive Bayes"))),
        "the references are announced"
    );
    assert_eq!(s.per_class.len(), 6);
    assert!(s.per_class.iter().all(|c| c.f1 > 0.0), "{:?}", s.per_class);
}

#[test]
fn generate_probe_is_answered_while_paused() {
    let mut exp = lm(BundledText::Words, 3000, 2);
    exp.training.epochs = 50;
    let handle = start(exp, StartOptions::default());
    assert!(handle.send(Control::Pause));
    let mut answered = None;
    let mut asked = false;
    while let Ok(e) = handle.events().recv_timeout(Duration::from_secs(60)) {
        match e {
            TrainEvent::Paused { .. } if !asked => {
                asked = true;
                handle.send(Control::Probe(Probe::Generate {
                    id: 4,
                    prompt: "qu".into(),
                    temperature: 1.0,
                    top_k: None,
                    length: 12,
                }));
            }
            TrainEvent::Probed(ProbeAnswer::Generated { id, text, .. }) => {
                answered = Some((id, text));
                handle.send(Control::Stop);
                handle.send(Control::Resume);
            }
            TrainEvent::Finished(_) | TrainEvent::Failed { .. } => break,
            _ => {}
        }
    }
    handle.join();
    let (id, text) = answered.expect("answered");
    assert_eq!(id, 4);
    assert!(
        text.starts_with("qu") && text.chars().count() == 14,
        "{text:?}"
    );
}

/// Pretrains on five languages, then trains on Portuguese from those weights and
/// from scratch for the same steps: the pretrained start ends lower.
#[test]
fn fine_tune_beats_scratch_and_frozen_weights_stay() {
    let dir = tempfile::tempdir().expect("tmp");
    let pre = dir.path().join("pre");
    let mut exp = lm(BundledText::Words, 12_000, 3);
    exp.dataset = DatasetSpec::Text(TextDatasetSpec {
        limit: None,
        ..match exp.dataset {
            DatasetSpec::Text(t) => t,
            _ => unreachable!("a text experiment"),
        }
    });
    exp.training.epochs = 1;
    let pre_events = run_all(exp.clone(), Some(&pre));
    summary(&pre_events);

    let target = |init: Option<&Path>, freeze: Vec<String>| {
        let mut e = lm(BundledText::WordsOf(Language::pt), 600, 9);
        e.training.init_from = init.map(Path::to_path_buf);
        e.training.freeze = freeze;
        e
    };
    let tuned = run_all(
        target(Some(&pre), vec!["0".into()]),
        Some(&dir.path().join("ft")),
    );
    let scratch = run_all(target(None, vec![]), None);
    let (t, s) = (summary(&tuned), summary(&scratch));
    assert_eq!(t.steps, s.steps);
    let (tl, sl) = (t.test_loss.expect("tl"), s.test_loss.expect("sl"));
    println!(
        "fine-tune test loss {tl:.4} vs scratch {sl:.4} after {} steps",
        t.steps
    );
    assert!(tl < sl, "fine-tuned {tl} vs scratch {sl}");
    let note = tuned
        .iter()
        .find_map(|e| match e {
            TrainEvent::Note { message, .. } if message.starts_with("init_from") => {
                Some(message.clone())
            }
            _ => None,
        })
        .expect("init_from note");
    assert!(note.contains("loaded"), "{note}");

    // The frozen embedding is bit-identical to the pretrained one.
    let load = |p: &Path| {
        candle_core::safetensors::load(p.join("model.safetensors"), &candle_core::Device::Cpu)
            .expect("weights")
    };
    let (a, b) = (load(&pre), load(&dir.path().join("ft")));
    assert_ne!(
        a["layers.1.weight_hh_l0"].to_string(),
        b["layers.1.weight_hh_l0"].to_string()
    );
    let emb = |m: &std::collections::HashMap<String, candle_core::Tensor>| {
        m["layers.0.weight"]
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .expect("emb")
    };
    // The pretrained vocabulary is reused, so the embedding shapes match.
    assert_eq!(emb(&a), emb(&b));
    assert!(!note.contains("kept their fresh values"), "{note}");
}
