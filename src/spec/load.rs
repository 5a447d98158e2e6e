//! Reading and writing experiment files. Syntax and type errors carry the file,
//! line and column from RON's parser; semantic errors come from `validate`.

use std::path::{Path, PathBuf};

use super::error::in_plain_words;
use super::experiment::Experiment;
use super::validate::{ValidationError, validate};

/// Everything that can be wrong with an experiment file.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// RON syntax error, unknown field, wrong type...
    #[error("{file}:{line}:{col}: {message}")]
    Parse {
        /// The file (or `<input>` for text without a file).
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        col: usize,
        /// RON's description of the problem.
        message: String,
    },
    /// Parsed fine but makes no sense (shapes do not chain, lr <= 0, ...).
    #[error("{file}: {error}")]
    Invalid {
        /// The file (or `<input>`).
        file: String,
        /// The first problem found.
        error: ValidationError,
    },
    /// A `--set` override that does not fit.
    #[error("--set {assignment}: {message}")]
    Override {
        /// The override as given.
        assignment: String,
        /// What is wrong with it.
        message: String,
    },
}

/// Parses and validates RON text; `file` names the source in error messages.
pub fn from_ron_str(text: &str, file: &str) -> Result<Experiment, SpecError> {
    let exp = parse_only(text, file)?;
    validate(&exp).map_err(|error| SpecError::Invalid {
        file: file.to_string(),
        error,
    })?;
    Ok(exp)
}

/// Parses RON text without semantic checks.
pub(crate) fn parse_only(text: &str, file: &str) -> Result<Experiment, SpecError> {
    ron_options()
        .from_str::<Experiment>(text)
        .map_err(|e| SpecError::Parse {
            file: file.to_string(),
            line: e.span.start.line,
            col: e.span.start.col,
            message: in_plain_words(&e.code.to_string()),
        })
}

/// Reads, parses and validates an experiment file.
pub fn load_file(path: &Path) -> Result<Experiment, SpecError> {
    let text = std::fs::read_to_string(path).map_err(|source| SpecError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    from_ron_str(&text, &path.display().to_string())
}

/// Pretty RON for saving; the output parses back to the same experiment.
pub fn to_ron_string(exp: &Experiment) -> String {
    pretty_ron(exp, 4)
}

/// Pretty RON in the forms the readers take (see `extensions`), nested to `depth`.
pub(crate) fn pretty_ron(value: &impl serde::Serialize, depth: usize) -> String {
    let pretty = ron::ser::PrettyConfig::new()
        .depth_limit(depth)
        .struct_names(false)
        .indentor("    ".to_string())
        .extensions(extensions());
    // Serialising plain data with no maps keyed by non-strings cannot fail.
    ron::Options::default()
        .to_string_pretty(value, pretty)
        .unwrap_or_else(|e| format!("// could not serialise: {e}"))
}

/// `Some(x)` may be written as `x`, and `Images((...))` as `Images(...)`: shorter
/// files for students; the writer uses the same forms so saved files read back.
fn extensions() -> ron::extensions::Extensions {
    ron::extensions::Extensions::IMPLICIT_SOME
        | ron::extensions::Extensions::UNWRAP_VARIANT_NEWTYPES
}

pub(crate) fn ron_options() -> ron::Options {
    ron::Options::default().with_default_extension(extensions())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_round_trips_through_ron() {
        let exp = Experiment::default();
        let text = to_ron_string(&exp);
        let back = from_ron_str(&text, "x.ron").expect("round trip");
        assert_eq!(exp, back, "text was:\n{text}");
    }

    #[test]
    fn every_example_round_trips() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/experiments");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).expect("experiments/") {
            let path = entry.expect("entry").path();
            if path.extension().is_none_or(|e| e != "ron") {
                continue; // studies/ holds study files, checked in spec::study
            }
            if path.file_name().is_some_and(|n| n == "broken.ron") {
                assert!(load_file(&path).is_err(), "broken.ron must stay broken");
                continue;
            }
            let exp = load_file(&path).unwrap_or_else(|e| panic!("{e}"));
            let text = to_ron_string(&exp);
            let back = from_ron_str(&text, "saved").unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(exp, back, "{}", path.display());
            seen += 1;
        }
        assert!(seen >= 4, "expected the example experiments, found {seen}");
    }

    #[test]
    fn default_is_the_mnist_mlp_example() {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/experiments/mnist_mlp.ron"
        ));
        assert_eq!(load_file(path).expect("example"), Experiment::default());
    }

    #[test]
    fn empty_struct_gives_defaults() {
        let exp = from_ron_str("()", "x.ron").expect("defaults");
        assert_eq!(exp, Experiment::default());
    }

    #[test]
    fn unknown_field_has_position() {
        let text = "(\n  name: \"a\",\n  sed: 3,\n)";
        let err = from_ron_str(text, "bad.ron").expect_err("unknown field");
        let msg = err.to_string();
        assert!(msg.starts_with("bad.ron:3:"), "{msg}");
        assert!(msg.contains("sed"), "{msg}");
    }

    #[test]
    fn wrong_type_has_position() {
        let text = "(\n  training: (\n    epochs: \"ten\",\n  ),\n)";
        let err = from_ron_str(text, "bad.ron").expect_err("wrong type");
        match err {
            SpecError::Parse { line, .. } => assert_eq!(line, 3, "{err}"),
            other => panic!("expected a parse error, got {other}"),
        }
    }

    #[test]
    fn syntax_error_has_position() {
        let text = "(\n  name: \"a\"\n  seed: 3,\n)";
        let err = from_ron_str(text, "bad.ron").expect_err("missing comma");
        assert!(matches!(err, SpecError::Parse { line: 3, .. }), "{err}");
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = load_file(Path::new("/no/such/exp.ron")).expect_err("missing");
        assert!(err.to_string().contains("/no/such/exp.ron"), "{err}");
    }
}
