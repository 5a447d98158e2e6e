//! The text half of `export pytorch`: a classifier or a language model as one
//! readable PyTorch script, plus `<script>.data.json` beside it holding what
//! Python cannot reproduce from trainlab's seeded generator: the vocabulary and
//! every split already encoded as token ids (classification: `max_len` ids per
//! document, padded on the left, and the labels; language model: one token
//! stream per split, documents separated by the break token).
//!
//! Contract: the script's module names and layouts are trainlab's (`layers.{i}.…`,
//! `head.…`), so a run's `model.safetensors` loads with `load_state_dict`; its
//! evaluation reads the same samples in the same batches and prints the figures
//! as trainlab does. The vocabulary is the run's `vocab.json` when exporting a run,
//! else the one trainlab would build (or inherit through `init_from`).

use std::path::Path;

use super::ExportError;
use crate::data::text::{Corpus, TextSplits, Vocab, load_corpus, split_docs};
use crate::data::text::{class_weights, limit_docs, stream};
use crate::runs::files;
use crate::spec::{
    ClassificationSpec, Experiment, LanguageModelSpec, LayerSpec, TextDatasetSpec, TextTask,
    Tokens, infer_shapes, kind_names, text_steps,
};

use super::pytorch::{Rendered, fill_training, filled, py_bool, py_opt, py_path, unsupported};

const TEMPLATE: &str = include_str!("pytorch_text_template.py");

/// The script and its data file for a text experiment (`weights`: a run's).
pub(super) fn render(
    exp: &Experiment,
    spec: &TextDatasetSpec,
    weights: Option<&Path>,
    eval_only: bool,
    out: &Path,
) -> Result<Rendered, ExportError> {
    if !eval_only {
        unsupported(exp)?;
    }
    // The model first: a layer without an equivalent is reported before any data is read.
    check_layers(&exp.model)?;
    let labelled = matches!(spec.task, TextTask::Classification(_));
    let mut corpus = load_corpus(&spec.source)?;
    if labelled && !corpus.is_labelled() {
        return Err(ExportError::NoLabels {
            text_source: format!("{:?}", spec.source),
        });
    }
    if !labelled {
        corpus.labels.clear();
        corpus.classes.clear();
    }
    if let Some(limit) = spec.limit {
        limit_docs(&mut corpus, limit, exp.seed);
    }
    let splits = split_docs(&corpus, spec.val_fraction, spec.test_fraction, exp.seed);
    if splits.train.is_empty() {
        return Err(ExportError::EmptyTrainSplit);
    }
    let vocab = vocabulary(exp, spec, weights, &corpus.docs, &splits.train)?;
    let (data, outputs, task_code) = match &spec.task {
        TextTask::Classification(c) => classification(c, &corpus, &splits, &vocab)?,
        TextTask::LanguageModel(lm) => language_model(lm, spec, &corpus, &splits, &vocab),
    };
    let (model, head_in) = model_code(exp, spec, vocab.len())?;
    let data_path = out.with_extension("data.json");
    let script = TEMPLATE
        .replace("{{NAME}}", &exp.name)
        .replace(
            "{{SOURCE}}",
            &format!("{:?}, tokens {:?}", spec.source, spec.tokens).replace('"', "'"),
        )
        .replace("{{DATA}}", &py_path(&data_path))
        .replace("{{TASK}}", &task_code)
        .replace("{{MODEL}}", &model)
        .replace("{{HEAD}}", &format!("nn.Linear({head_in}, {outputs})"));
    let script = filled(fill_training(script, exp, weights, eval_only))?;
    let data_text = serde_json::to_string(&data)?;
    Ok(Rendered {
        script,
        sidecars: vec![(data_path, data_text.into_bytes())],
    })
}

/// A classifier's data file, its output width and its task lines: each split's
/// documents as `max_len` ids with their classes, and the class weights.
fn classification(
    c: &ClassificationSpec,
    corpus: &Corpus,
    splits: &TextSplits,
    vocab: &Vocab,
) -> Result<(serde_json::Value, usize, String), ExportError> {
    let docs = &corpus.docs;
    let encode = |rows: &[usize]| {
        serde_json::json!({
            "ids": rows.iter().map(|&i| vocab.encode_padded(&docs[i], c.max_len)).collect::<Vec<_>>(),
            "labels": rows.iter().map(|&i| corpus.labels[i]).collect::<Vec<_>>(),
        })
    };
    let train_labels: Vec<u32> = splits
        .train
        .iter()
        .map(|&i| corpus.labels[i] as u32)
        .collect();
    let k = corpus.classes.len();
    let weights =
        class_weights(&c.class_weights, &train_labels, k).map_err(ExportError::ClassWeights)?;
    let outputs = match (c.binary, k) {
        (true, 2) => 1,
        (true, k) => {
            return Err(ExportError::BinaryClasses { classes: k });
        }
        (false, k) => k,
    };
    let data = serde_json::json!({
        "about": "trainlab's vocabulary and its train/val/test split of the corpus, each \
                  document as max_len token ids (0 = padding, on the left) with its class",
        "tokens": vocab.tokens,
        "classes": corpus.classes,
        "train": encode(&splits.train),
        "val": encode(&splits.val),
        "test": encode(&splits.test),
    });
    let task = format!(
        "TASK = \"classification\"\nBINARY = {}  # one logit and binary cross-entropy\n\
         CLASS_WEIGHTS = {}  # loss weight per class (None: all equal)\nSEQ_LEN = None\n\
         SAMPLE_EVERY = None  # classifiers generate no text",
        py_bool(c.binary),
        weights.map_or("None".into(), |w| format!("{w:?}")),
    );
    Ok((data, outputs, task))
}

/// A language model's data file, its output width (the vocabulary) and its task
/// lines: each split as one token stream, and how samples are drawn.
fn language_model(
    lm: &LanguageModelSpec,
    spec: &TextDatasetSpec,
    corpus: &Corpus,
    splits: &TextSplits,
    vocab: &Vocab,
) -> (serde_json::Value, usize, String) {
    let docs = &corpus.docs;
    let data = serde_json::json!({
        "about": "trainlab's vocabulary and its train/val/test split of the corpus, each \
                  split as one stream of token ids (documents end with id 2, the break)",
        "tokens": vocab.tokens,
        "train": stream(&splits.train, docs, vocab),
        "val": stream(&splits.val, docs, vocab),
        "test": stream(&splits.test, docs, vocab),
    });
    let s = &lm.sample;
    let task = format!(
        "TASK = \"language model\"\nBINARY = False\nCLASS_WEIGHTS = None\n\
         SEQ_LEN = {}  # tokens per window\n\
         # Generated samples: every SAMPLE_EVERY steps (None: never), continuing\n\
         # PROMPT (already as token ids), drawn at TEMPERATURE among the TOP_K\n\
         # most likely tokens (None: all).\n\
         SAMPLE_EVERY = {}\nPROMPT = {:?}\nPROMPT_IDS = {:?}\nTEMPERATURE = {}\n\
         TOP_K = {}\nSAMPLE_LENGTH = {}\nWORDS = {}  # word tokens are joined by spaces",
        lm.seq_len,
        py_opt(lm.sample_every_steps),
        s.prompt,
        vocab.encode(&s.prompt),
        s.temperature,
        py_opt(s.top_k),
        s.length,
        py_bool(spec.tokens == Tokens::Words),
    );
    (data, vocab.len(), task)
}

/// The run's own vocabulary when there is one (beside its weights), else the
/// pretrained run's (`init_from`), else the one trainlab builds from the
/// training documents.
fn vocabulary(
    exp: &Experiment,
    spec: &TextDatasetSpec,
    weights: Option<&Path>,
    docs: &crate::data::text::Docs,
    train: &[usize],
) -> Result<Vocab, ExportError> {
    let own = weights.and_then(Path::parent).map(|d| d.join(files::VOCAB));
    let inherited = exp
        .training
        .init_from
        .as_ref()
        .map(|d| d.join(files::VOCAB));
    match own.into_iter().chain(inherited).find(|p| p.is_file()) {
        Some(path) => Ok(Vocab::load(&path)?),
        None => {
            let min_count = if spec.tokens == Tokens::Words { 2 } else { 1 };
            Ok(Vocab::build(
                train.iter().map(|&i| &docs[i]),
                spec.tokens,
                spec.lowercase,
                min_count,
            ))
        }
    }
}

/// Every layer must have a module below; the first that has none is named.
fn check_layers(layers: &[LayerSpec]) -> Result<(), ExportError> {
    for (i, layer) in layers.iter().enumerate() {
        let kind = layer.descriptor();
        if !kind.pytorch_scripts.text() {
            return Err(ExportError::Layer {
                index: i,
                kind: kind.name,
                problem: format!(
                    " in a text model has no exported PyTorch equivalent: text models cover {}",
                    kind_names(|k| k.pytorch_scripts.text())
                ),
            });
        }
    }
    Ok(())
}

/// `nn.ModuleList` entries, index for index with trainlab's `layers.{i}`, and
/// the width the output layer (`head`) reads.
fn model_code(
    exp: &Experiment,
    spec: &TextDatasetSpec,
    vocab: usize,
) -> Result<(String, usize), ExportError> {
    let input = [text_steps(spec), vocab];
    let shapes = infer_shapes(&exp.model, &input)?;
    let mut lines = Vec::new();
    let mut shape: Vec<usize> = input.to_vec();
    for (i, layer) in exp.model.iter().enumerate() {
        let kind = layer.descriptor();
        if !kind.pytorch_scripts.text() {
            return Err(ExportError::Layer {
                index: i,
                kind: kind.name,
                problem: " has no exported PyTorch equivalent".into(),
            });
        }
        let code = (kind.pytorch)(layer, &shape);
        lines.push(format!(
            "            {code},  # layers.{i}: output {:?}",
            shapes[i].output
        ));
        shape.clone_from(&shapes[i].output);
    }
    Ok((lines.join("\n"), shape.last().copied().unwrap_or(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gru_classifier_keeps_trainlabs_names() {
        let exp = crate::spec::from_ron_str(
            "(dataset: Text(task: Classification(max_len: 8)), \
             model: [Embedding(dim: 4), GRU(hidden: 6), LastStep])",
            "t",
        )
        .expect("parses");
        let crate::spec::DatasetSpec::Text(spec) = &exp.dataset else {
            panic!("text")
        };
        let (code, head_in) = model_code(&exp, spec, 20).expect("exports");
        assert!(code.contains("nn.Embedding(20, 4),  # layers.0"), "{code}");
        assert!(
            code.contains("GRU(4, 6, num_layers=1, dropout=0),  # layers.1"),
            "{code}"
        );
        assert!(code.contains("LastStep(),  # layers.2"), "{code}");
        assert_eq!(head_in, 6);
        let mut conv = exp.clone();
        conv.model.insert(
            1,
            LayerSpec::BatchNorm {
                momentum: 0.1,
                eps: 1e-5,
            },
        );
        let err = check_layers(&conv.model).expect_err("refused").to_string();
        assert!(err.contains("model[1] (BatchNorm)"), "{err}");
    }
}
