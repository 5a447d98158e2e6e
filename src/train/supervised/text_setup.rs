//! What both text tasks do before training: read the corpus, split it with the
//! run's seed, build and save the vocabulary, build the model with its output
//! layer, apply `init_from` and `freeze`, and announce the run.

use candle_core::{Device, Var};

use crate::data::text::limit_docs;
use crate::data::text::{Corpus, TextSplits, Vocab, load_corpus, split_docs};
use crate::events::{LayerRow, RunInfo, StepItems, TrainEvent};
use crate::model::Model;
use crate::runs::files;
use crate::spec::{Experiment, TextDatasetSpec, Tokens, infer_shapes, text_steps};
use crate::train::device::{describe, device_for};
use crate::train::emitter::Emitter;
use crate::train::finetune::init_and_freeze;
use crate::train::handle::StartOptions;
use crate::train::worker::RunFailure;

/// Everything a text loop starts from.
pub(crate) struct TextSetup {
    pub device: Device,
    pub corpus: Corpus,
    pub splits: TextSplits,
    pub vocab: Vocab,
    pub model: Model,
    /// Parameters that train (frozen ones left out).
    pub vars: Vec<Var>,
    /// Width of the head the data sized (vocabulary, classes, or 1 for binary).
    pub head_outputs: usize,
}

/// Reads data and builds the model; `outputs` gives the head size from the
/// corpus and vocabulary (vocabulary size, class count, or 1 for binary).
pub(crate) fn prepare(
    exp: &Experiment,
    spec: &TextDatasetSpec,
    options: &StartOptions,
    emitter: &mut Emitter,
    labelled: bool,
    outputs: &dyn Fn(&Corpus, &Vocab) -> Result<usize, RunFailure>,
) -> Result<TextSetup, RunFailure> {
    let device = device_for(exp.device)?;
    let mut corpus = load_corpus(&spec.source)?;
    if labelled && !corpus.is_labelled() {
        return Err(RunFailure::input(format!(
            "dataset.source {:?} has no labels; classification needs a Folder, a Table, \
             Bundled(WordLanguages) or a System source with classes",
            spec.source
        )));
    }
    if !labelled && corpus.is_labelled() {
        // A language model ignores labels and learns from the text alone.
        corpus.labels.clear();
        corpus.classes.clear();
    }
    if let Some(limit) = spec.limit {
        limit_docs(&mut corpus, limit, exp.seed);
    }
    let splits = split_docs(&corpus, spec.val_fraction, spec.test_fraction, exp.seed);
    if splits.train.is_empty() {
        return Err(RunFailure::input(
            "the training split is empty; lower val_fraction/test_fraction or raise limit",
        ));
    }
    // A resumed run keeps its own vocabulary; fine-tuning keeps the pretrained
    // run's, so token ids (and the embedding and output rows) mean the same thing.
    let own = options
        .resume_from
        .as_ref()
        .and(options.run_dir.as_ref())
        .map(|dir| dir.join(files::VOCAB));
    let inherited = own
        .or_else(|| {
            exp.training
                .init_from
                .as_ref()
                .map(|from| from.join(files::VOCAB))
        })
        .filter(|p| p.is_file());
    let vocab = match &inherited {
        Some(path) => Vocab::load(path)?,
        None => {
            let min_count = if spec.tokens == Tokens::Words { 2 } else { 1 };
            Vocab::build(
                splits.train.iter().map(|&i| &corpus.docs[i]),
                spec.tokens,
                spec.lowercase,
                min_count,
            )
        }
    };
    if let Some(path) = &inherited {
        emitter.emit(TrainEvent::Note {
            step: 0,
            message: format!(
                "using the vocabulary of {} ({} tokens); unseen tokens become <unk>",
                path.display(),
                vocab.len()
            ),
        });
    }
    if let Some(rec) = &emitter.recorder {
        let path = rec.dir().join(files::VOCAB);
        // A full disk here is a storage failure, not a mistake in the input.
        vocab
            .save(&path)
            .map_err(|e| RunFailure::storage(0, e.to_string()))?;
    }
    let out = outputs(&corpus, &vocab)?;
    let input = [text_steps(spec), vocab.len()];
    let mut model = Model::build_with_head(&exp.model, &input, Some(out), exp.seed, &device)
        .map_err(RunFailure::candle(0, "cannot build the model"))?;
    model.set_kernels(options.kernels);
    model.set_compute(crate::train::precision::compute_dtype(
        exp.training.precision,
    ));
    let vars = init_and_freeze(
        &model,
        &exp.training,
        &device,
        options.resume_from.is_some(),
        emitter,
    )?;
    Ok(TextSetup {
        device,
        corpus,
        splits,
        vocab,
        model,
        vars,
        head_outputs: out,
    })
}

/// The Started event of a text run; `samples` are (train, val, test) counts.
#[allow(clippy::too_many_arguments)]
pub(crate) fn announce(
    exp: &Experiment,
    setup: &TextSetup,
    emitter: &mut Emitter,
    samples: (usize, usize, usize),
    steps_per_epoch: u64,
    classes: Vec<String>,
    step_items: StepItems,
) {
    let spec_input = setup.model.input_shape().to_vec();
    let mut layers: Vec<LayerRow> = infer_shapes(&exp.model, &spec_input)
        .map(|rows| {
            rows.into_iter()
                .map(|l| LayerRow {
                    kind: l.kind.to_string(),
                    output: l.output,
                    params: l.params,
                })
                .collect()
        })
        .unwrap_or_default();
    let body: usize = layers.iter().map(|l| l.params).sum();
    let last = layers.last().map(|l| l.output.clone()).unwrap_or_default();
    layers.push(LayerRow {
        kind: "Linear (head)".into(),
        output: last
            .iter()
            .take(last.len().saturating_sub(1))
            .copied()
            .chain([setup.head_outputs])
            .collect(),
        params: setup.model.param_count().saturating_sub(body),
    });
    emitter.emit(TrainEvent::Started(RunInfo {
        name: exp.name.clone(),
        run_dir: emitter.run_dir(),
        device: describe(exp.device),
        parameters: setup.model.param_count(),
        train_samples: samples.0,
        val_samples: samples.1,
        test_samples: samples.2,
        steps_per_epoch,
        total_steps: steps_per_epoch * exp.training.epochs as u64,
        classes,
        layers,
        step_items,
    }));
}
