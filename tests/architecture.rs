//! The one-way rule between top-level modules, enforced.
//!
//! Every `src/**/*.rs` file (except `lib.rs` and `main.rs`, which wire modules
//! together) is read; each `crate::X` path in its code (comments and string
//! literals are skipped) is an edge from the file's top-level module (`src/<m>/`
//! or `src/<m>.rs`) to `X`. The test fails on
//! - a cycle between top-level modules,
//! - a forbidden edge (see [`FORBIDDEN`] and [`spec_never_reaches_candle`]),
//! - an entry of [`KNOWN`] that no longer happens, so the list only shrinks.
//!
//! It also fails on a function longer than [`MAX_FN_LINES`] in `src/` or
//! `benches/`, outside test code and the hand-written kernels ([`KERNEL_FILES`]).
//!
//! Run: `cargo test --release --test architecture`.
//!
//! Pure std: this test must not need the crate it checks to be correct.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Imports that break the rule today and are being removed (issue 30):
/// (file, module it imports, why). Each is allowed from that file only, so the
/// same edge from a new file still fails; an entry whose file no longer makes
/// the edge fails too, until it is deleted here.
const KNOWN: &[(&str, &str, &str)] = &[];

/// Edges that must never exist: (from, to, why). `"*"` as `from` means every
/// module except those in [`GUI_USERS`].
const FORBIDDEN: &[(&str, &str, &str)] = &[
    (
        "spec",
        "data",
        "spec is checked without building datasets; take the figure from the caller",
    ),
    (
        "runs",
        "train",
        "runs/ is disk only; the event contract lives below both",
    ),
    (
        "gui",
        "model",
        "the GUI uses trained models through infer/, never model/ itself",
    ),
    (
        "runs",
        "model",
        "runs/ is disk only; models are read back in infer/",
    ),
    ("runs", "infer", "runs/ is disk only; infer/ sits above it"),
    (
        "events",
        "train",
        "the event contract is plain data below everything that sends or reads it",
    ),
    (
        "events",
        "model",
        "the event contract is plain data below everything that sends or reads it",
    ),
    (
        "events",
        "data",
        "the event contract is plain data below everything that sends or reads it",
    ),
    (
        "events",
        "runs",
        "the event contract is plain data below everything that sends or reads it",
    ),
    (
        "events",
        "infer",
        "the event contract is plain data below everything that sends or reads it",
    ),
    (
        "*",
        "gui",
        "only the CLI (and main.rs) start the GUI; nothing else may depend on it",
    ),
];

/// Modules allowed to import `gui` (main.rs is not scanned).
const GUI_USERS: &[&str] = &["cli"];

/// One `crate::X` reference.
#[derive(Clone, Debug)]
struct Site {
    file: PathBuf,
    line: usize,
}

/// from -> to -> where the edge is made.
type Graph = BTreeMap<String, BTreeMap<String, Vec<Site>>>;

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to; `None` for lib.rs and main.rs.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let mut parts = rel.components();
    let first = parts.next()?.as_os_str().to_str()?;
    if parts.next().is_some() {
        return Some(first.to_string());
    }
    match first.strip_suffix(".rs")? {
        "lib" | "main" => None,
        m => Some(m.to_string()),
    }
}

/// The source with comments and the insides of string and char literals replaced
/// by spaces (newlines kept, so line numbers stay right).
fn code_only(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |out: &mut String, ch: char| out.push(if ch == '\n' { '\n' } else { ' ' });
    let mut i = 0;
    while i < c.len() {
        let at = |k: usize| c.get(i + k).copied().unwrap_or('\0');
        if at(0) == '/' && at(1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if at(0) == '/' && at(1) == '*' {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
        } else if at(0) == 'r'
            && (at(1) == '"' || (at(1) == '#' && (at(2) == '"' || at(2) == '#')))
            && !(i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_'))
        {
            // Raw string r#"..."#: ends at a quote followed by as many hashes.
            let mut hashes = 0;
            i += 1;
            while c.get(i) == Some(&'#') {
                hashes += 1;
                i += 1;
            }
            i += 1;
            out.push('"');
            while i < c.len() {
                if c[i] == '"' && (1..=hashes).all(|k| c.get(i + k) == Some(&'#')) {
                    i += 1 + hashes;
                    break;
                }
                blank(&mut out, c[i]);
                i += 1;
            }
            out.push('"');
        } else if at(0) == '"' {
            out.push('"');
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    blank(&mut out, c[i]);
                    i += 1;
                }
                if i < c.len() {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
            out.push('"');
            i += 1;
        } else if at(0) == '\'' && (at(1) == '\\' || at(2) == '\'') {
            // A char literal ('x', '\n', '\''); a lifetime ('a) is left as code.
            i += if at(1) == '\\' { 2 } else { 1 };
            while i < c.len() && c[i] != '\'' {
                i += 1;
            }
            out.push_str("' '");
            i += 1;
        } else {
            out.push(at(0));
            i += 1;
        }
    }
    out
}

/// The top-level modules named by `crate::` paths in code, with their lines;
/// `crate::{a::x, b}` names both `a` and `b`.
fn crate_refs(code: &str) -> Vec<(String, usize)> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|ch| ch.is_alphanumeric() || *ch == '_')
            .collect()
    };
    let mut refs = Vec::new();
    for (n, line) in code.lines().enumerate() {
        let mut rest = line;
        while let Some(pos) = rest.find("crate::") {
            let before = rest[..pos].chars().last();
            rest = &rest[pos + "crate::".len()..];
            if before.is_some_and(|ch| ch.is_alphanumeric() || ch == '_') {
                continue; // e.g. `some_crate::`
            }
            let group = rest.trim_start();
            if let Some(inner) = group.strip_prefix('{') {
                // Only the top level of the group names modules.
                let mut depth = 0;
                let mut item_start = true;
                for (k, ch) in inner.char_indices() {
                    match ch {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => item_start = true,
                        ch if item_start && !ch.is_whitespace() => {
                            refs.push((ident(&inner[k..]), n + 1));
                            item_start = false;
                        }
                        _ => {}
                    }
                }
            } else {
                refs.push((ident(rest), n + 1));
            }
        }
    }
    refs.retain(|(m, _)| !m.is_empty() && m != "self");
    refs
}

/// The module graph of `src/` and the modules whose code names candle.
fn scan() -> (Graph, BTreeSet<String>) {
    let src = src_dir();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut graph = Graph::new();
    let mut candle = BTreeSet::new();
    for file in files {
        let Some(from) = module_of(&src, &file) else {
            continue;
        };
        let text =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let code = code_only(&text);
        if code.contains("candle_core") || code.contains("candle_nn") || code.contains("candle::") {
            candle.insert(from.clone());
        }
        graph.entry(from.clone()).or_default();
        for (to, line) in crate_refs(&code) {
            if to != from {
                let rel = file
                    .strip_prefix(src.parent().expect("root"))
                    .unwrap_or(&file);
                graph
                    .entry(from.clone())
                    .or_default()
                    .entry(to)
                    .or_default()
                    .push(Site {
                        file: rel.to_path_buf(),
                        line,
                    });
            }
        }
    }
    (graph, candle)
}

fn is_known(site: &Site, to: &str) -> bool {
    KNOWN
        .iter()
        .any(|(f, t, _)| *t == to && site.file == Path::new(f))
}

/// The graph without the known exceptions (an edge made only by them is gone).
fn checked_graph(graph: &Graph) -> Graph {
    let mut g = graph.clone();
    for tos in g.values_mut() {
        for (to, sites) in tos.iter_mut() {
            sites.retain(|s| !is_known(s, to));
        }
        tos.retain(|_, sites| !sites.is_empty());
    }
    g
}

fn describe(graph: &Graph, from: &str, to: &str) -> String {
    let sites = &graph[from][to];
    let list: Vec<String> = sites
        .iter()
        .take(4)
        .map(|s| format!("{}:{}", s.file.display(), s.line))
        .collect();
    let more = if sites.len() > 4 {
        format!(" and {} more", sites.len() - 4)
    } else {
        String::new()
    };
    format!("{from} -> {to} ({}{more})", list.join(", "))
}

/// A path from `from` to `to` along edges of `graph`, if there is one.
fn path(graph: &Graph, from: &str, to: &str) -> Option<Vec<String>> {
    let mut parent: BTreeMap<String, String> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([from.to_string()]);
    let mut seen = BTreeSet::from([from.to_string()]);
    while let Some(m) = queue.pop_front() {
        for next in graph.get(&m).into_iter().flat_map(|tos| tos.keys()) {
            if next == to {
                let mut out = vec![to.to_string(), m.clone()];
                let mut at = m.clone();
                while let Some(p) = parent.get(&at) {
                    out.push(p.clone());
                    at = p.clone();
                }
                out.reverse();
                return Some(out);
            }
            if seen.insert(next.clone()) {
                parent.insert(next.clone(), m.clone());
                queue.push_back(next.clone());
            }
        }
    }
    None
}

fn fail_if_any(problems: String, what: &str) {
    assert!(
        problems.is_empty(),
        "{what}\n{problems}\nSee ARCHITECTURE.md for the one-way rule; \
         tests/architecture.rs lists the known exceptions."
    );
}

#[test]
fn no_cycles_between_top_level_modules() {
    let (graph, _) = scan();
    let g = checked_graph(&graph);
    let mut problems = String::new();
    let mut reported = BTreeSet::new();
    for (from, tos) in &g {
        for to in tos.keys() {
            let Some(back) = path(&g, to, from) else {
                continue;
            };
            let mut cycle: Vec<String> = vec![from.clone()];
            cycle.extend(back);
            let mut key: Vec<String> = cycle[..cycle.len() - 1].to_vec();
            key.sort();
            if !reported.insert(key) {
                continue;
            }
            let _ = writeln!(problems, "cycle {}:", cycle.join(" -> "));
            for pair in cycle.windows(2) {
                let _ = writeln!(problems, "  {}", describe(&g, &pair[0], &pair[1]));
            }
        }
    }
    fail_if_any(problems, "Top-level modules import each other in a circle:");
}

#[test]
fn no_forbidden_edges() {
    let (graph, _) = scan();
    let g = checked_graph(&graph);
    let mut problems = String::new();
    for (from, tos) in &g {
        for to in tos.keys() {
            for (f, t, why) in FORBIDDEN {
                let from_matches = if *f == "*" {
                    !GUI_USERS.contains(&from.as_str())
                } else {
                    f == from
                };
                if from_matches && t == to {
                    let _ = writeln!(problems, "{}: {why}", describe(&g, from, to));
                }
            }
        }
    }
    fail_if_any(problems, "Forbidden imports between top-level modules:");
}

#[test]
fn spec_never_reaches_candle() {
    let (graph, candle) = scan();
    let g = checked_graph(&graph);
    let mut problems = String::new();
    if candle.contains("spec") {
        problems.push_str("spec names candle itself\n");
    }
    for m in &candle {
        if let Some(p) = path(&g, "spec", m) {
            let _ = writeln!(problems, "spec reaches {m}, which uses candle:");
            for pair in p.windows(2) {
                let _ = writeln!(problems, "  {}", describe(&g, &pair[0], &pair[1]));
            }
        }
    }
    fail_if_any(
        problems,
        "spec must be checkable without candle (the GUI editor and `check` use it):",
    );
}

#[test]
fn every_known_exception_still_exists() {
    let (graph, _) = scan();
    let gone: Vec<String> = KNOWN
        .iter()
        .filter(|(file, to, _)| {
            !graph
                .values()
                .filter_map(|tos| tos.get(*to))
                .flatten()
                .any(|s| s.file == Path::new(file))
        })
        .map(|(file, to, _)| format!("{file} -> {to}"))
        .collect();
    assert!(
        gone.is_empty(),
        "These known exceptions no longer happen; delete them from KNOWN in \
         tests/architecture.rs so they cannot come back: {}",
        gone.join(", ")
    );
}

#[test]
fn the_scanner_sees_code_and_skips_comments_and_strings() {
    let text = "use crate::spec::Experiment;\n\
                // use crate::gui::App;\n\
                /* crate::model:: /* nested */ crate::runs:: */\n\
                let s = \"crate::train::start\"; let r = r#\"crate::cli\"#;\n\
                let c = '\"'; fn f<'a>(x: &'a str) { crate::data::maze::maze_for(x) }\n\
                use crate::{quant::steps, util::{atomic, rng}};\n\
                other_crate::study::x();";
    let refs = crate_refs(&code_only(text));
    let names: Vec<(&str, usize)> = refs.iter().map(|(m, l)| (m.as_str(), *l)).collect();
    assert_eq!(
        names,
        [("spec", 1), ("data", 5), ("quant", 6), ("util", 6)],
        "{}",
        code_only(text)
    );
}

/// Longest a function may be: lines from its `fn` to its closing brace.
const MAX_FN_LINES: usize = 120;

/// Files of hand-written SIMD kernels, whose long functions are allowed: an
/// unrolled inner loop reads best whole.
const KERNEL_FILES: &[&str] = &[
    "src/model/kernels/conv.rs",
    "src/model/kernels/lstm_fused.rs",
];

/// Functions over [`MAX_FN_LINES`] being split (issue 30): (file, function).
/// Like [`KNOWN`], the list only shrinks: an entry that is short now fails.
const KNOWN_LONG: &[(&str, &str)] = &[];

/// One function found in code: its name, first line and length in lines.
#[derive(Debug, PartialEq)]
struct FnSpan {
    name: String,
    line: usize,
    lines: usize,
}

/// The index just past the brace that closes the one at `open`.
fn matching_brace(c: &[char], open: usize) -> usize {
    let mut depth = 0usize;
    for (k, ch) in c.iter().enumerate().skip(open) {
        match ch {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return k + 1;
                }
            }
            _ => {}
        }
    }
    c.len()
}

/// The functions with a body in `code` (from [`code_only`]), nested ones too;
/// items under `#[cfg(test)]` are skipped.
fn functions(code: &str) -> Vec<FnSpan> {
    let c: Vec<char> = code.chars().collect();
    let line_at = |i: usize| c[..i].iter().filter(|ch| **ch == '\n').count() + 1;
    let is_ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    let text_at = |i: usize, w: &str| {
        w.chars()
            .enumerate()
            .all(|(k, ch)| c.get(i + k) == Some(&ch))
    };
    let word_at = |i: usize, w: &str| {
        text_at(i, w)
            && !(i > 0 && is_ident(c[i - 1]))
            && !c.get(i + w.len()).is_some_and(|ch| is_ident(*ch))
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        if text_at(i, "#[cfg(test)]") {
            // The item under the attribute ends at its first `;` or its body.
            let mut k = i + "#[cfg(test)]".len();
            while k < c.len() && c[k] != '{' && c[k] != ';' {
                k += 1;
            }
            i = if c.get(k) == Some(&'{') {
                matching_brace(&c, k)
            } else {
                k + 1
            };
            continue;
        }
        if !(word_at(i, "fn") && c.get(i + 2).is_some_and(|ch| ch.is_whitespace())) {
            i += 1;
            continue;
        }
        let mut k = i + 2;
        while k < c.len() && c[k].is_whitespace() {
            k += 1;
        }
        let name: String = c[k..].iter().take_while(|ch| is_ident(**ch)).collect();
        // The body opens at the first `{` outside parentheses and brackets
        // (`[f32; 4]` holds a `;`); a `;` first means a declaration.
        let mut depth = 0i32;
        while k < c.len() {
            match c[k] {
                '(' | '[' => depth += 1,
                ')' | ']' => depth -= 1,
                '{' | ';' if depth == 0 => break,
                _ => {}
            }
            k += 1;
        }
        if c.get(k) == Some(&'{') && !name.is_empty() {
            let end = matching_brace(&c, k);
            let line = line_at(i);
            out.push(FnSpan {
                name,
                line,
                lines: line_at(end.saturating_sub(1)) - line + 1,
            });
        }
        i += 2;
    }
    out
}

#[test]
fn no_function_is_longer_than_the_limit() {
    let src = src_dir();
    let root = src.parent().expect("root");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    // The benchmarks are read as code too: a bench a reader cannot follow
    // measures something nobody can check.
    rust_files(&root.join("benches"), &mut files);
    files.sort();
    let mut problems = String::new();
    let mut long = BTreeSet::new();
    for file in files {
        let rel = file.strip_prefix(root).unwrap_or(&file).to_path_buf();
        let rel_text = rel.to_string_lossy().replace('\\', "/");
        if KERNEL_FILES.contains(&rel_text.as_str()) {
            continue;
        }
        let text =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for f in functions(&code_only(&text)) {
            if f.lines <= MAX_FN_LINES {
                continue;
            }
            long.insert((rel_text.clone(), f.name.clone()));
            if !KNOWN_LONG.contains(&(rel_text.as_str(), f.name.as_str())) {
                let _ = writeln!(
                    problems,
                    "{rel_text}:{} fn {} is {} lines",
                    f.line, f.name, f.lines
                );
            }
        }
    }
    assert!(
        problems.is_empty(),
        "Functions over {MAX_FN_LINES} lines (split them into named parts a reader \
         understands; only the kernel files in KERNEL_FILES may have longer ones):\n{problems}"
    );
    let gone: Vec<String> = KNOWN_LONG
        .iter()
        .filter(|(file, name)| !long.contains(&(file.to_string(), name.to_string())))
        .map(|(file, name)| format!("{file} {name}"))
        .collect();
    assert!(
        gone.is_empty(),
        "These functions are short now; delete them from KNOWN_LONG: {}",
        gone.join(", ")
    );
}

#[test]
fn the_function_scanner_measures_bodies_and_skips_tests() {
    let text = "fn short() -> [f32; 4] {\n    [0.0; 4]\n}\n\
                trait T { fn declared(&self); }\n\
                fn outer<F: Fn(u32) -> u32>(f: F)\nwhere F: Copy\n{\n    fn inner() {}\n    let g: fn(u32) = |_| {};\n}\n\
                #[cfg(test)]\nmod tests {\n    fn in_test() {\n    }\n}\n\
                fn last() { let s = \"fn fake() {\"; }";
    let found = functions(&code_only(text));
    let spans: Vec<(&str, usize, usize)> = found
        .iter()
        .map(|f| (f.name.as_str(), f.line, f.lines))
        .collect();
    assert_eq!(
        spans,
        [
            ("short", 1, 3),
            ("outer", 5, 6),
            ("inner", 8, 1),
            ("last", 16, 1)
        ],
        "{found:?}"
    );
}
