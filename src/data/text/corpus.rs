//! Reading a [`TextSource`] into documents, with labels for classification.
//! A document is one non-empty line (a word, a sentence) or, for fortunes, one
//! `%`-separated fortune. Files must be UTF-8; the first bad line is reported
//! as `file:line`.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::docs::Docs;
use super::error::TextDataError;
use crate::spec::{BundledText, Language, SystemText, TextSource};

/// Documents and, for labelled sources, one class per document.
#[derive(Debug, Clone, PartialEq)]
pub struct Corpus {
    /// The texts, in source order, in one buffer.
    pub docs: Docs,
    /// Class index per document (empty when unlabelled).
    pub labels: Vec<usize>,
    /// Class names in label order (empty when unlabelled).
    pub classes: Vec<String>,
}

impl Corpus {
    fn unlabelled(docs: impl Into<Docs>) -> Self {
        Self {
            docs: docs.into(),
            labels: Vec::new(),
            classes: Vec::new(),
        }
    }

    /// Builds a labelled corpus from (class name, documents, where they came from).
    fn labelled(groups: Vec<(String, Vec<String>, PathBuf)>) -> Result<Self, TextDataError> {
        let mut c = Self::unlabelled(Docs::new());
        for (class, docs, path) in groups {
            if docs.is_empty() {
                return Err(TextDataError::EmptyClass { class, path });
            }
            let label = c.classes.len();
            c.labels.extend(std::iter::repeat_n(label, docs.len()));
            c.docs.extend(docs);
            c.classes.push(class);
        }
        Ok(c)
    }

    /// Whether documents carry labels.
    pub fn is_labelled(&self) -> bool {
        !self.classes.is_empty()
    }
}

/// Reads every document of `source`.
pub fn load_corpus(source: &TextSource) -> Result<Corpus, TextDataError> {
    let corpus = match source {
        TextSource::Bundled(b) => bundled(*b)?,
        TextSource::System(s) => system(*s)?,
        // The file's buffer becomes the documents' (no copy of a large corpus).
        TextSource::File(path) => Corpus::unlabelled(Docs::lines_of(read_utf8(path)?)),
        TextSource::Folder(dir) => folder(dir)?,
        TextSource::Table {
            path,
            text_column,
            label_column,
        } => table(path, text_column, label_column)?,
    };
    if corpus.docs.is_empty() {
        return Err(TextDataError::Empty {
            what: format!("{source:?}"),
        });
    }
    if corpus.is_labelled() && corpus.classes.len() < 2 {
        return Err(TextDataError::TooFewClasses {
            what: format!("{source:?}"),
            found: corpus.classes.len(),
        });
    }
    Ok(corpus)
}

/// Reads a file as UTF-8, naming the first line that is not.
pub fn read_utf8(path: &Path) -> Result<String, TextDataError> {
    let bytes = read_bytes(path)?;
    utf8(bytes, path)
}

fn read_bytes(path: &Path) -> Result<Vec<u8>, TextDataError> {
    let io = |source| TextDataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let raw = std::fs::read(path).map_err(io)?;
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(io)?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

fn utf8(bytes: Vec<u8>, path: &Path) -> Result<String, TextDataError> {
    String::from_utf8(bytes).map_err(|e| {
        let upto = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        TextDataError::Encoding {
            path: path.to_path_buf(),
            line: upto.iter().filter(|&&b| b == b'\n').count() + 1,
        }
    })
}

/// Non-empty lines, trimmed.
fn lines(text: &str, _path: &Path) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

fn folder(dir: &Path) -> Result<Corpus, TextDataError> {
    let io = |source| TextDataError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut class_dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    class_dirs.sort();
    let mut groups = Vec::new();
    for class_dir in class_dirs {
        let name = class_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&class_dir)
            .map_err(|source| TextDataError::Io {
                path: class_dir.clone(),
                source,
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "txt"))
            .collect();
        files.sort();
        let mut docs = Vec::new();
        for f in &files {
            docs.extend(lines(&read_utf8(f)?, f));
        }
        groups.push((name, docs, class_dir));
    }
    Corpus::labelled(groups)
}

fn table(path: &Path, text_col: &str, label_col: &str) -> Result<Corpus, TextDataError> {
    let text = read_utf8(path)?;
    let sep = if path.extension().is_some_and(|e| e == "tsv") {
        '\t'
    } else {
        ','
    };
    let bad = |line: usize, problem: String| TextDataError::Table {
        path: path.to_path_buf(),
        line,
        problem,
    };
    let mut rows = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = rows.next() else {
        return Err(TextDataError::Empty {
            what: path.display().to_string(),
        });
    };
    let names: Vec<String> = split_row(header, sep).map_err(|p| bad(1, p))?;
    let find = |want: &str| {
        names.iter().position(|n| n == want).ok_or_else(|| {
            bad(
                1,
                format!("no column named '{want}'; the header has {names:?}"),
            )
        })
    };
    let (ti, li) = (find(text_col)?, find(label_col)?);
    let mut groups: Vec<(String, Vec<String>, PathBuf)> = Vec::new();
    for (i, row) in rows {
        let line = i + 1;
        let cells = split_row(row, sep).map_err(|p| bad(line, p))?;
        if cells.len() != names.len() {
            return Err(bad(
                line,
                format!("{} fields but the header has {}", cells.len(), names.len()),
            ));
        }
        let (doc, label) = (cells[ti].trim(), cells[li].trim());
        if label.is_empty() {
            return Err(bad(
                line,
                format!("the label column '{label_col}' is empty"),
            ));
        }
        let slot = match groups.iter().position(|g| g.0 == label) {
            Some(k) => k,
            None => {
                groups.push((label.to_string(), Vec::new(), path.to_path_buf()));
                groups.len() - 1
            }
        };
        if !doc.is_empty() {
            groups[slot].1.push(doc.to_string());
        }
    }
    // Sorted class names: the same file always gives the same label ids.
    groups.sort_by(|a, b| a.0.cmp(&b.0));
    Corpus::labelled(groups)
}

/// Splits one CSV/TSV row; double quotes protect separators (`""` is a quote).
/// Boundary: the text is the `problem` of the `TextDataError::Table` its caller
/// makes, which adds the file and line.
fn split_row(row: &str, sep: char) -> Result<Vec<String>, String> {
    let mut cells = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = row.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            c if c == sep && !quoted => cells.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    if quoted {
        return Err("a quoted field is not closed (fields cannot span lines)".into());
    }
    cells.push(cur);
    Ok(cells)
}

/// Folders that may hold `assets/`: `$TRAINLAB_ASSETS`, the crate's, next to the
/// binary, the installed `/usr/share/trainlab/assets`.
fn asset_roots() -> Vec<PathBuf> {
    let mut roots = Vec::new();
    if let Some(p) = std::env::var_os("TRAINLAB_ASSETS") {
        roots.push(PathBuf::from(p));
    }
    roots.push(PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets"
    )));
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
    {
        roots.push(dir.join("assets"));
    }
    roots.push(crate::util::install::share_assets());
    roots
}

/// The bundled sample of one language's words.
pub fn bundled_words(lang: Language) -> Result<Vec<String>, TextDataError> {
    let file = format!("words/{}.txt.gz", lang.code());
    let roots = asset_roots();
    let Some(path) = roots.iter().map(|r| r.join(&file)).find(|p| p.is_file()) else {
        return Err(TextDataError::MissingAssets {
            file,
            searched: roots
                .iter()
                .map(|r| r.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        });
    };
    Ok(lines(&read_utf8(&path)?, &path))
}

fn bundled(b: BundledText) -> Result<Corpus, TextDataError> {
    match b {
        BundledText::Words => {
            let mut docs = Vec::new();
            for lang in Language::ALL {
                docs.extend(bundled_words(lang)?);
            }
            Ok(Corpus::unlabelled(docs))
        }
        BundledText::WordsOf(lang) => Ok(Corpus::unlabelled(bundled_words(lang)?)),
        BundledText::WordLanguages => {
            let mut groups = Vec::new();
            for lang in Language::ALL {
                groups.push((
                    lang.code().to_string(),
                    bundled_words(lang)?,
                    PathBuf::from("assets/words"),
                ));
            }
            Corpus::labelled(groups)
        }
    }
}

const FORTUNES: &str = "/usr/share/games/fortunes";
const DICT: &str = "/usr/share/dict";

/// The fortunes of one file, split at `%` lines; lossy for the few non-UTF-8
/// files some packages ship (the `.u8` twins are preferred when present).
fn fortune_file(path: &Path) -> Result<Vec<String>, TextDataError> {
    let u8_twin = path.with_extension(match path.extension() {
        Some(e) => format!("{}.u8", e.to_string_lossy()),
        None => "u8".into(),
    });
    let bytes = read_bytes(if u8_twin.is_file() { &u8_twin } else { path })?;
    let text = String::from_utf8_lossy(&bytes);
    Ok(text
        .split("\n%\n")
        .map(|f| f.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|f| !f.is_empty() && f != "%")
        .collect())
}

/// Fortune files directly in `dir` (not the `.dat` indexes or `.u8` copies).
fn fortune_files(dir: &Path, package: &str) -> Result<Vec<PathBuf>, TextDataError> {
    let missing = || TextDataError::MissingPackage {
        what: "fortune files".into(),
        path: dir.to_path_buf(),
        package: package.into(),
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|_| missing())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_none())
        .filter(|p| !p.is_symlink())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(missing());
    }
    Ok(files)
}

fn system(s: SystemText) -> Result<Corpus, TextDataError> {
    let root = Path::new(FORTUNES);
    match s {
        SystemText::Fortunes => {
            let mut docs = Vec::new();
            for f in fortune_files(root, "fortunes")? {
                docs.extend(fortune_file(&f)?);
            }
            Ok(Corpus::unlabelled(docs))
        }
        SystemText::FortuneTopics => {
            let mut groups = Vec::new();
            for f in fortune_files(root, "fortunes")? {
                let name = f
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let docs = fortune_file(&f)?;
                // Tiny files make classes too small to split; they are left out.
                if docs.len() >= 50 {
                    groups.push((name, docs, f));
                }
            }
            Corpus::labelled(groups)
        }
        SystemText::FortuneLanguages => {
            let mut groups = Vec::new();
            let mut english = Vec::new();
            for f in fortune_files(root, "fortunes")? {
                english.extend(fortune_file(&f)?);
            }
            groups.push(("en".to_string(), english, root.to_path_buf()));
            for (code, package) in [
                ("de", "fortunes-de"),
                ("es", "fortunes-es"),
                ("it", "fortunes-it"),
            ] {
                let dir = root.join(code);
                let mut docs = Vec::new();
                for f in fortune_files(&dir, package)? {
                    docs.extend(fortune_file(&f)?);
                }
                groups.push((code.to_string(), docs, dir));
            }
            Corpus::labelled(groups)
        }
        SystemText::WordLanguages => {
            let lists = [
                ("de", "ngerman", "wngerman"),
                ("en", "american-english", "wamerican"),
                ("es", "spanish", "wspanish"),
                ("fr", "french", "wfrench"),
                ("it", "italian", "witalian"),
                ("pt", "portuguese", "wportuguese"),
            ];
            let mut groups = Vec::new();
            for (code, file, package) in lists {
                let path = Path::new(DICT).join(file);
                if !path.is_file() {
                    return Err(TextDataError::MissingPackage {
                        what: format!("the {code} word list"),
                        path,
                        package: package.into(),
                    });
                }
                let words = lines(&read_utf8(&path)?, &path)
                    .into_iter()
                    .filter(|w| w.chars().all(char::is_alphabetic))
                    .collect();
                groups.push((code.to_string(), words, path));
            }
            Corpus::labelled(groups)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).ok();
        }
        std::fs::write(&p, bytes).ok();
        p
    }

    #[test]
    fn bundled_word_languages_load() -> Result<(), TextDataError> {
        let c = load_corpus(&TextSource::Bundled(BundledText::WordLanguages))?;
        assert_eq!(c.classes, vec!["en", "de", "fr", "es", "it", "pt"]);
        assert_eq!(c.docs.len(), 6 * 3000);
        assert_eq!(c.labels.len(), c.docs.len());
        Ok(())
    }

    #[test]
    fn bad_utf8_names_file_and_line() {
        let dir = tempfile::tempdir().ok();
        let Some(dir) = dir else { return };
        let p = write(dir.path(), "a.txt", b"ok\nfine\nbad \xff here\n");
        let err = load_corpus(&TextSource::File(p)).map(|_| ()).err();
        let msg = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("a.txt:3:"), "{msg}");
    }

    #[test]
    fn empty_file_and_empty_class_are_errors() {
        let Some(dir) = tempfile::tempdir().ok() else {
            return;
        };
        let p = write(dir.path(), "e.txt", b"\n  \n");
        let msg = load_corpus(&TextSource::File(p))
            .err()
            .map(|e| e.to_string());
        assert!(msg.unwrap_or_default().contains("no text"));
        write(dir.path(), "f/spam/a.txt", b"buy now\n");
        write(dir.path(), "f/ham/a.txt", b"\n");
        let msg = load_corpus(&TextSource::Folder(dir.path().join("f")))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            msg.contains("class 'ham'") && msg.contains("f/ham"),
            "{msg}"
        );
    }

    #[test]
    fn folder_classes_are_sorted_subfolders() -> Result<(), TextDataError> {
        let Some(dir) = tempfile::tempdir().ok() else {
            return Ok(());
        };
        write(dir.path(), "b/x.txt", b"one\ntwo\n");
        write(dir.path(), "a/y.txt", b"three\n");
        let c = load_corpus(&TextSource::Folder(dir.path().to_path_buf()))?;
        assert_eq!(c.classes, vec!["a", "b"]);
        assert_eq!(c.labels, vec![0, 1, 1]);
        Ok(())
    }

    #[test]
    fn tables_parse_quotes_and_report_bad_rows() -> Result<(), TextDataError> {
        let Some(dir) = tempfile::tempdir().ok() else {
            return Ok(());
        };
        let p = write(
            dir.path(),
            "t.csv",
            b"label,text\npos,\"good, really\"\nneg,bad\n",
        );
        let src = |p: &Path| TextSource::Table {
            path: p.to_path_buf(),
            text_column: "text".into(),
            label_column: "label".into(),
        };
        let c = load_corpus(&src(&p))?;
        assert_eq!(c.classes, vec!["neg", "pos"]);
        assert_eq!(c.docs, vec!["bad", "good, really"]);
        let p = write(dir.path(), "u.tsv", b"label\ttext\npos\tfine\nneg\n");
        let msg = load_corpus(&src(&p))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            msg.contains("u.tsv:3:") && msg.contains("1 fields"),
            "{msg}"
        );
        let p = write(dir.path(), "v.csv", b"label,body\npos,x\n");
        let msg = load_corpus(&src(&p))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            msg.contains("v.csv:1:") && msg.contains("no column named 'text'"),
            "{msg}"
        );
        Ok(())
    }

    #[test]
    fn missing_system_package_says_what_to_install() {
        let msg = fortune_files(Path::new("/nonexistent/fortunes"), "fortunes-xx")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(msg.contains("apt install fortunes-xx"), "{msg}");
    }
}
