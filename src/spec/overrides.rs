//! `--set path.to.field=value` overrides. The experiment is turned into a JSON tree,
//! the path is walked (enum variant names may be skipped: `optimizer.lr` reaches
//! `optimizer.Adam.lr`), the value replaced, and the tree turned back into an
//! experiment so types are checked exactly as for a file.

use serde_json::Value;

use super::experiment::Experiment;
use super::load::SpecError;
use super::validate::validate;

/// Applies one `path=value` assignment and re-validates.
///
/// The value is read as JSON (`2`, `1e-4`, `true`, `"text"`, `{"Cuda": 0}`); a bare
/// word such as `Cpu` or `FashionMnist` is taken as a string (a unit enum variant).
pub fn apply_override(exp: &Experiment, assignment: &str) -> Result<Experiment, SpecError> {
    let fail = |message: String| SpecError::Override {
        assignment: assignment.to_string(),
        message,
    };
    let (path, raw) = assignment
        .split_once('=')
        .ok_or_else(|| fail("expected path.to.field=value".into()))?;
    let value: Value =
        serde_json::from_str(raw.trim()).unwrap_or_else(|_| Value::String(raw.trim().to_string()));
    let mut tree = serde_json::to_value(exp).map_err(|e| fail(e.to_string()))?;
    let mut node = &mut tree;
    let mut walked = Vec::new();
    let keys: Vec<&str> = path.trim().split('.').collect();
    // Set when the last field was absent from the tree (fields left out of saved
    // files while at their defaults, e.g. `dataset.size`): serde decides below.
    let mut added: Option<String> = None;
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
            node = add_field(node, key).ok_or_else(|| fail(missing.clone()))?;
            added = Some(missing);
        } else {
            node = step(node, key).ok_or_else(|| fail(missing))?;
        }
        walked.push(key.to_string());
    }
    *node = value;
    let out: Experiment = serde_json::from_value(tree).map_err(|e| {
        match &added {
            // An unknown name: the message that lists the fields, not serde's.
            Some(missing) if e.to_string().contains("unknown field") => fail(missing.clone()),
            _ => fail(e.to_string()),
        }
    })?;
    validate(&out).map_err(|e| fail(e.to_string()))?;
    Ok(out)
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
        Value::Array(a) => format!("indices 0..{}", a.len()),
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
}
