//! `--set path.to.field=VALUE` overrides. The experiment is turned into a JSON tree
//! and the path is walked (enum variant names may be skipped: `optimizer.lr`
//! reaches `optimizer.Adam.lr`); then the tree is read back into an experiment with
//! VALUE read as RON against the type of the field found there, so VALUE is written
//! exactly as in an experiment file: `2`, `1e-4`, `true`, `"text"`, `None`,
//! `Some(100)`, `Cuda(0)`, `File("corpus.txt")`, `Adam(lr: 1e-3)`, `[16, 20]`,
//! `{"key": 1}`. Types are then validated as for a file.
//!
//! Two older forms still work where RON does not fit: JSON (`{"Cuda": 0}`) and a
//! bare word for a text field (`--set name=baseline`).

use serde_json::Value;

use super::error::in_plain_words;
use super::experiment::Experiment;
use super::load::SpecError;
use super::splice::read_spliced;
use super::validate::validate;

/// Applies one `path=VALUE` assignment and re-validates.
pub fn apply_override(exp: &Experiment, assignment: &str) -> Result<Experiment, SpecError> {
    let out = set_field(exp, assignment)?;
    validate(&out).map_err(|e| SpecError::Override {
        assignment: assignment.to_string(),
        message: e.to_string(),
    })?;
    Ok(out)
}

/// Applies one `path=VALUE` assignment: the path must exist and VALUE must fit
/// its type; the experiment is not validated (a study checks each value of its
/// space alone, where only the combination of values must make sense).
pub(crate) fn set_field(exp: &Experiment, assignment: &str) -> Result<Experiment, SpecError> {
    let fail = |message: String| SpecError::Override {
        assignment: assignment.to_string(),
        message,
    };
    let (path, raw) = assignment
        .split_once('=')
        .ok_or_else(|| fail("expected PATH=VALUE, e.g. training.epochs=3".into()))?;
    let (path, raw) = (path.trim(), raw.trim());
    if raw.is_empty() {
        return Err(fail(format!(
            "no value after `=`; give one as in an experiment file, e.g. {path}=3"
        )));
    }
    let keys: Vec<&str> = path.split('.').collect();
    let original = serde_json::to_value(exp).map_err(|e| fail(e.to_string()))?;
    let mut tree = original.clone();
    let (node, added) = walk(&mut tree, &keys).map_err(fail)?;
    let target: *const Value = node;
    let out = match read_spliced::<Experiment>(&tree, target, raw) {
        Ok(out) => out,
        // An unknown name: the message that lists the fields, not serde's.
        Err(e) if !e.in_value && e.message.contains("unknown field") && added.is_some() => {
            return Err(fail(added.unwrap_or_default()));
        }
        Err(e) => {
            // The older forms: JSON, or a bare word taken as text.
            let mut tree = original;
            let (node, _) = walk(&mut tree, &keys).map_err(fail)?;
            let json = serde_json::from_str::<Value>(raw).ok();
            *node = json
                .clone()
                .unwrap_or_else(|| Value::String(raw.to_string()));
            serde_json::from_value::<Experiment>(tree).map_err(|json_error| {
                // A plain number or text of the wrong type: serde's message says
                // what was found and what is needed; RON's only where it stopped.
                let message = match json {
                    Some(Value::Number(_) | Value::String(_) | Value::Bool(_)) => {
                        json_error.to_string()
                    }
                    _ => e.message,
                };
                fail(format!(
                    "{}; write VALUE as in an experiment file, e.g. 3, 1e-3, None, Some(100), \
                     File(\"a.txt\"), [16, 20] (see `trainlab run --help`)",
                    in_plain_words(&message)
                ))
            })?
        }
    };
    Ok(out)
}

/// `extended` with the lr decay `recorded` was planned with: when a run is
/// extended (`resume --set training.epochs=N`), a cosine decay keeps its horizon
/// (`schedule.decay_epochs`) at the recorded run's epochs, so the lr goes on from
/// the floor it reached instead of jumping back up a curve stretched over the new
/// length. An explicit `schedule.decay_epochs` in `extended` is kept.
pub fn keep_decay_plan(recorded: &Experiment, mut extended: Experiment) -> Experiment {
    let cosine = matches!(extended.schedule.decay, super::LrDecay::Cosine { .. });
    if cosine
        && extended.training.epochs != recorded.training.epochs
        && extended.schedule.decay_epochs == recorded.schedule.decay_epochs
    {
        extended.schedule.decay_epochs = Some(
            recorded
                .schedule
                .decay_epochs
                .unwrap_or(recorded.training.epochs),
        );
    }
    extended
}

/// Walks `keys` down `tree` to the node to set. The last field may be absent
/// (a field left out of a saved file at its default): it is added, and the
/// message to give if serde does not know it either comes back with it.
/// Boundary: the text is the `problem` of the `SpecError::Override` its caller
/// makes, which names the `--set` and the path.
fn walk<'a>(tree: &'a mut Value, keys: &[&str]) -> Result<(&'a mut Value, Option<String>), String> {
    let mut node = tree;
    let mut walked: Vec<&str> = Vec::new();
    let mut added = None;
    for (k, key) in keys.iter().copied().enumerate() {
        // Names are gathered first: the error needs them after the mutable walk fails.
        let names = field_names(node);
        let hint =
            closest(key, &names).map_or(String::new(), |n| format!(" (did you mean `{n}`?)"));
        let here = if walked.is_empty() {
            "the experiment".to_string()
        } else {
            walked.join(".")
        };
        let missing = format!("{here} has no field `{key}`{hint}; fields there: {names}");
        let last = k + 1 == keys.len();
        if last && !has_step(node, key) {
            node = add_field(node, key).ok_or_else(|| missing.clone())?;
            added = Some(missing);
        } else {
            node = step(node, key).ok_or(missing)?;
        }
        walked.push(key);
    }
    Ok((node, added))
}

/// One path step: an object key, an array index, or through an enum variant wrapper.
fn step<'a>(node: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    if let Ok(i) = key.parse::<usize>()
        && node.is_array()
    {
        return node.get_mut(i);
    }
    let has_key = node.as_object().is_some_and(|m| m.contains_key(key));
    if has_key {
        return node.get_mut(key);
    }
    // An externally tagged enum is `{ "Variant": inner }`: look inside it.
    let obj = node.as_object_mut()?;
    if obj.len() == 1 {
        let inner = obj.values_mut().next()?;
        return step(inner, key);
    }
    None
}

/// Whether `step` would find `key`.
fn has_step(node: &mut Value, key: &str) -> bool {
    step(node, key).is_some()
}

/// Adds the absent field `key` to the struct `node` (looking through an enum
/// variant wrapper), holding null until the value is written.
fn add_field<'a>(node: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    let obj = node.as_object_mut()?;
    if obj.len() == 1 && obj.values().next().is_some_and(Value::is_object) {
        return add_field(obj.values_mut().next()?, key);
    }
    Some(obj.entry(key.to_string()).or_insert(Value::Null))
}

/// The name in `names` (comma-separated) nearest to `key` by edit distance, when
/// it is near enough to be a typo.
fn closest<'a>(key: &str, names: &'a str) -> Option<&'a str> {
    let distance = |a: &str, b: &str| {
        let b: Vec<char> = b.chars().collect();
        let mut row: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut prev = row[0];
            row[0] = i + 1;
            for (j, cb) in b.iter().enumerate() {
                let cur = row[j + 1];
                row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
                prev = cur;
            }
        }
        row[b.len()]
    };
    names
        .split(", ")
        .map(|n| (distance(key, n), n))
        .filter(|(d, n)| *d > 0 && *d <= (n.len().max(key.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

fn field_names(node: &Value) -> String {
    match node {
        Value::Object(m) if m.len() == 1 => match m.values().next() {
            Some(inner @ Value::Object(_)) => field_names(inner),
            _ => m.keys().cloned().collect::<Vec<_>>().join(", "),
        },
        Value::Object(m) => m.keys().cloned().collect::<Vec<_>>().join(", "),
        Value::Array(a) if a.is_empty() => "none (the list is empty)".into(),
        Value::Array(a) => format!("indices 0-{}", a.len() - 1),
        _ => "none (it is a plain value)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{DatasetSpec, DeviceSpec, ImageDataset};

    #[test]
    fn an_unknown_field_suggests_the_nearest_one() {
        let err = apply_override(&Experiment::default(), "training.epoch=2")
            .expect_err("no such field")
            .to_string();
        assert!(err.contains("did you mean `epochs`?"), "{err}");
        let err = apply_override(&Experiment::default(), "training.zzz=2")
            .expect_err("no such field")
            .to_string();
        assert!(!err.contains("did you mean"), "nothing near: {err}");
    }

    #[test]
    fn sets_plain_numbers() {
        let exp = apply_override(&Experiment::default(), "training.epochs=2").expect("ok");
        assert_eq!(exp.training.epochs, 2);
    }

    #[test]
    fn walks_through_enum_variants() {
        let exp = apply_override(&Experiment::default(), "optimizer.lr=0.01").expect("ok");
        assert_eq!(exp.optimizer.lr(), 0.01);
        let exp = apply_override(&exp, "dataset.name=FashionMnist").expect("ok");
        let DatasetSpec::Images(d) = &exp.dataset else {
            panic!("still an image dataset");
        };
        assert_eq!(d.name, ImageDataset::FashionMnist);
    }

    #[test]
    fn sets_enum_with_payload_and_indices() {
        let exp = apply_override(&Experiment::default(), r#"device={"Cuda":1}"#).expect("ok");
        assert_eq!(exp.device, DeviceSpec::Cuda(1));
        let exp = apply_override(&exp, "model.1.Linear.out=64").expect("ok");
        assert_eq!(exp.model[1], crate::spec::LayerSpec::Linear { out: 64 });
    }

    #[test]
    fn errors_name_the_problem() {
        let e = apply_override(&Experiment::default(), "training.epoch=2").expect_err("typo");
        assert!(
            e.to_string().contains("epochs"),
            "lists the real fields: {e}"
        );
        let e = apply_override(&Experiment::default(), "training.epochs=many").expect_err("type");
        assert!(e.to_string().contains("training.epochs"), "{e}");
        let e = apply_override(&Experiment::default(), "training.batch_size=0").expect_err("zero");
        assert!(e.to_string().contains("batch_size"), "{e}");
        assert!(apply_override(&Experiment::default(), "no_equals").is_err());
    }

    #[test]
    fn fields_left_out_at_their_defaults_can_be_set() {
        let exp = apply_override(&Experiment::default(), r#"dataset.source={"Folder":"x"}"#)
            .expect("a folder");
        let exp = apply_override(&exp, "dataset.size=[16,20]").expect("size");
        let exp = apply_override(&exp, "dataset.channels=Rgb").expect("channels");
        let DatasetSpec::Images(d) = &exp.dataset else {
            panic!("still an image dataset");
        };
        assert_eq!(
            (d.size, d.channels),
            (Some((16, 20)), crate::spec::Channels::Rgb)
        );
        // A typo in the last name still lists the fields there.
        let e = apply_override(&exp, "dataset.chanels=Rgb").expect_err("typo");
        assert!(e.to_string().contains("did you mean `channels`?"), "{e}");
        let e = apply_override(&exp, "trainin.epochs=2").expect_err("typo");
        assert!(e.to_string().contains("did you mean `training`?"), "{e}");
    }

    fn example(name: &str) -> Experiment {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("experiments")
            .join(name);
        crate::spec::load_file(&path).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn options_take_none_some_and_the_bare_value() {
        let exp = apply_override(
            &Experiment::default(),
            "training.eval_every_steps=Some(100)",
        )
        .expect("Some(100)");
        assert_eq!(exp.training.eval_every_steps, Some(100));
        let exp = apply_override(&exp, "training.eval_every_steps=None").expect("None");
        assert_eq!(exp.training.eval_every_steps, None);
        let exp = apply_override(&exp, "training.eval_every_steps=50").expect("implicit Some");
        assert_eq!(exp.training.eval_every_steps, Some(50));
    }

    #[test]
    fn variants_with_payloads_are_read_as_ron() {
        let exp = example("text_charlm_lstm.ron");
        let exp = apply_override(&exp, r#"dataset.source=File("corpus.txt")"#).expect("File");
        let DatasetSpec::Text(t) = &exp.dataset else {
            panic!("still a text dataset");
        };
        assert_eq!(
            t.source,
            crate::spec::TextSource::File("corpus.txt".into()),
            "the variant with its path"
        );
        let exp = apply_override(&Experiment::default(), "device=Cuda(1)").expect("Cuda(1)");
        assert_eq!(exp.device, DeviceSpec::Cuda(1));
        let exp = apply_override(&exp, "optimizer=Sgd(lr: 0.5)").expect("a struct variant");
        assert_eq!(exp.optimizer.lr(), 0.5);
        // A unit variant by its bare name, as before.
        let exp = apply_override(&exp, "model.0=Flatten").expect("bare name");
        assert_eq!(exp.model[0], crate::spec::LayerSpec::Flatten);
    }

    #[test]
    fn lists_tuples_maps_and_text() {
        let exp = apply_override(
            &Experiment::default(),
            "model=[Flatten, Linear(out: 32), ReLU, Linear(out: 10)]",
        )
        .expect("a list");
        assert_eq!(exp.model.len(), 4);
        assert_eq!(exp.model[1], crate::spec::LayerSpec::Linear { out: 32 });
        let exp = apply_override(
            &exp,
            r#"schedule.changes=[(epoch: 1, set: {"optimizer.lr": "0.01"})]"#,
        )
        .expect("a list of structs holding a map");
        assert_eq!(exp.schedule.changes.len(), 1);
        assert_eq!(
            exp.schedule.changes[0]
                .set
                .get("optimizer.lr")
                .map(String::as_str),
            Some("0.01")
        );
        let exp = apply_override(&exp, r#"dataset.source=Folder("imgs")"#).expect("folder");
        let exp = apply_override(&exp, "dataset.size=(16, 20)").expect("a tuple");
        let DatasetSpec::Images(d) = &exp.dataset else {
            panic!("still an image dataset");
        };
        assert_eq!(d.size, Some((16, 20)));
        // Text: quoted as in a file, or a bare word.
        let exp = apply_override(&exp, r#"name="two words""#).expect("quoted");
        assert_eq!(exp.name, "two words");
        let exp = apply_override(&exp, "name=baseline").expect("bare word");
        assert_eq!(exp.name, "baseline");
    }

    #[test]
    fn a_value_of_the_wrong_type_says_what_is_needed_in_words() {
        let e = apply_override(&Experiment::default(), "training.eval_every_steps=Nonee")
            .expect_err("not a value")
            .to_string();
        assert!(e.contains("training.eval_every_steps"), "{e}");
        assert!(
            !e.contains("usize") && !e.contains("u64"),
            "no Rust types: {e}"
        );
        let e = apply_override(&Experiment::default(), "training.epochs=2.5")
            .expect_err("not whole")
            .to_string();
        assert!(e.contains("whole number"), "{e}");
    }

    #[test]
    fn list_indices_are_named_as_written() {
        let e = apply_override(&Experiment::default(), "model.9.Linear.out=3")
            .expect_err("no such layer")
            .to_string();
        let last = Experiment::default().model.len() - 1;
        assert!(e.contains(&format!("indices 0-{last}")), "{e}");
    }
}
