//! The token vocabulary: built from the training corpus, saved as `vocab.json` in
//! the run folder and loaded back with the weights. Ids 0 and 1 are always
//! `<pad>` and `<unk>`; id 2 is the document break (`\n`), so generated text
//! can end a word or line. Everything else is sorted, so a corpus always gives
//! the same ids.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::TextDataError;
use crate::spec::Tokens;

/// Padding id (classification batches, never predicted).
pub const PAD: u32 = 0;
/// Unknown-token id (word mode: rare words; both modes: text not seen in training).
pub const UNK: u32 = 1;
/// Document break id.
pub const BREAK: u32 = 2;

/// A token <-> id table plus how text is cut.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vocab {
    /// Characters or words.
    pub mode: Tokens,
    /// Text was lower-cased before tokenising.
    pub lowercase: bool,
    /// Token text by id.
    pub tokens: Vec<String>,
    #[serde(skip)]
    index: HashMap<String, u32>,
    /// Id by ASCII code (a character vocabulary's fast path; `<unk>` if absent).
    #[serde(skip)]
    ascii: Vec<u32>,
}

impl Vocab {
    /// Builds the vocabulary of `docs`; in word mode, words seen fewer than
    /// `min_count` times map to `<unk>`.
    pub fn build<'a>(
        docs: impl IntoIterator<Item = &'a str>,
        mode: Tokens,
        lowercase: bool,
        min_count: usize,
    ) -> Self {
        let counts = match mode {
            Tokens::Chars => count_chars(docs, lowercase),
            Tokens::Words => {
                let mut counts: BTreeMap<String, usize> = BTreeMap::new();
                for doc in docs {
                    let doc = normalise(doc, lowercase);
                    for t in split(&doc, mode) {
                        *counts.entry(t.to_string()).or_default() += 1;
                    }
                }
                counts
            }
        };
        let mut tokens: Vec<String> = vec!["<pad>".into(), "<unk>".into(), "\n".into()];
        tokens.extend(
            counts
                .into_iter()
                .filter(|(t, n)| *n >= min_count && t != "\n")
                .map(|(t, _)| t),
        );
        Self::from_tokens(mode, lowercase, tokens)
    }

    fn from_tokens(mode: Tokens, lowercase: bool, tokens: Vec<String>) -> Self {
        let index = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect::<HashMap<String, u32>>();
        let ascii = (0u8..128)
            .map(|b| index.get((b as char).encode_utf8(&mut [0; 4]) as &str))
            .map(|id| id.copied().unwrap_or(UNK))
            .collect();
        Self {
            mode,
            lowercase,
            tokens,
            index,
            ascii,
        }
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Never true: the special tokens are always there.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Token ids of `text`; unseen tokens become `<unk>`.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut out = Vec::new();
        self.encode_each(text, |id| out.push(id));
        out
    }

    /// Hands each token id of `text` to `f`, in order (what [`Self::encode`]
    /// returns, without a vector per text).
    pub fn encode_each(&self, text: &str, mut f: impl FnMut(u32)) {
        let text = normalise(text, self.lowercase);
        if self.mode == Tokens::Words {
            for t in split(&text, self.mode) {
                f(self.index.get(t).copied().unwrap_or(UNK));
            }
            return;
        }
        let mut buf = [0u8; 4];
        for c in text.chars() {
            let id = match self.ascii.get(c as usize) {
                Some(&id) => id,
                None => self
                    .index
                    .get(&*c.encode_utf8(&mut buf))
                    .copied()
                    .unwrap_or(UNK),
            };
            f(id);
        }
    }

    /// Exactly `len` ids for a classifier: the first `len` tokens of `text`,
    /// padded on the left (so the last step is always the text's last token).
    pub fn encode_padded(&self, text: &str, len: usize) -> Vec<u32> {
        let mut ids = self.encode(text);
        ids.truncate(len);
        let mut out = vec![PAD; len - ids.len()];
        out.extend(ids);
        out
    }

    /// Text of `ids` (words joined by spaces, breaks as newlines).
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut out = String::new();
        for &id in ids {
            let t = self.tokens.get(id as usize).map_or("<unk>", String::as_str);
            if self.mode == Tokens::Words && !out.is_empty() && !out.ends_with('\n') && t != "\n" {
                out.push(' ');
            }
            out.push_str(t);
        }
        out
    }

    /// Writes `vocab.json`.
    pub fn save(&self, path: &Path) -> Result<(), TextDataError> {
        let json = serde_json::to_string_pretty(self).map_err(|e| TextDataError::Vocab {
            path: path.to_path_buf(),
            problem: e.to_string(),
        })?;
        crate::util::atomic::write_atomic(path, json.as_bytes()).map_err(|e| TextDataError::Vocab {
            path: path.to_path_buf(),
            problem: e.to_string(),
        })
    }

    /// Reads a `vocab.json` written by `save`.
    pub fn load(path: &Path) -> Result<Self, TextDataError> {
        let bad = |problem: String| TextDataError::Vocab {
            path: path.to_path_buf(),
            problem,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let v: Vocab = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        if v.tokens
            .get(..3)
            .is_none_or(|s| s[0] != "<pad>" || s[1] != "<unk>" || s[2] != "\n")
        {
            return Err(bad(
                "the first three tokens must be <pad>, <unk> and a line break".into(),
            ));
        }
        Ok(Self::from_tokens(v.mode, v.lowercase, v.tokens))
    }
}

fn normalise(text: &str, lowercase: bool) -> std::borrow::Cow<'_, str> {
    if lowercase {
        text.to_lowercase().into()
    } else {
        text.into()
    }
}

/// How often each character of `docs` (normalised) occurs, as single-character
/// token strings (ASCII counted in a table: no string per character).
fn count_chars<'a>(
    docs: impl IntoIterator<Item = &'a str>,
    lowercase: bool,
) -> BTreeMap<String, usize> {
    let mut ascii = [0usize; 128];
    let mut other: HashMap<char, usize> = HashMap::new();
    for doc in docs {
        let doc = normalise(doc, lowercase);
        for c in doc.chars() {
            match ascii.get_mut(c as usize) {
                Some(n) => *n += 1,
                None => *other.entry(c).or_default() += 1,
            }
        }
    }
    let ascii = (0u8..128)
        .zip(ascii)
        .filter(|&(_, n)| n > 0)
        .map(|(b, n)| ((b as char).to_string(), n));
    ascii
        .chain(other.into_iter().map(|(c, n)| (c.to_string(), n)))
        .collect()
}

/// Characters, or words with line breaks kept as their own token.
fn split(text: &str, mode: Tokens) -> Box<dyn Iterator<Item = &str> + '_> {
    match mode {
        Tokens::Chars => Box::new(
            text.char_indices()
                .map(move |(i, c)| &text[i..i + c.len_utf8()]),
        ),
        Tokens::Words => Box::new(text.split_inclusive('\n').flat_map(|line| {
            let brk = line.ends_with('\n').then_some("\n");
            line.split_whitespace().chain(brk)
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_character_fast_paths_give_what_one_string_per_character_gave() {
        let docs = ["Héllo World", "ÇA VA\tÉTÉ", "İstanbul x\u{1F600}y", "abc"];
        for lowercase in [false, true] {
            // The rule as it was: every character a string, counted in order.
            let mut counts: BTreeMap<String, usize> = BTreeMap::new();
            for d in docs {
                for t in split(&normalise(d, lowercase), Tokens::Chars) {
                    *counts.entry(t.to_string()).or_default() += 1;
                }
            }
            let mut want = vec!["<pad>".to_string(), "<unk>".into(), "\n".into()];
            want.extend(counts.into_keys().filter(|t| t != "\n"));
            let v = Vocab::build(
                docs[..3].iter().copied().chain(["abc"]),
                Tokens::Chars,
                lowercase,
                1,
            );
            assert_eq!(v.tokens, want, "lowercase {lowercase}");
            for text in ["Héllo İ\u{1F600}!", "zz\nQ"] {
                let slow: Vec<u32> = split(&normalise(text, lowercase), Tokens::Chars)
                    .map(|t| v.index.get(t).copied().unwrap_or(UNK))
                    .collect();
                assert_eq!(v.encode(text), slow, "{text:?}, lowercase {lowercase}");
            }
        }
    }

    #[test]
    fn chars_round_trip_and_unknowns() {
        let v = Vocab::build(["abc", "über"], Tokens::Chars, false, 1);
        assert_eq!(&v.tokens[..3], &["<pad>", "<unk>", "\n"]);
        let ids = v.encode("cab\nü");
        assert_eq!(v.decode(&ids), "cab\nü");
        assert_eq!(v.encode("z"), vec![UNK]);
    }

    #[test]
    fn words_keep_breaks_and_drop_rare_words() {
        let v = Vocab::build(["the cat\nthe dog", "the cat"], Tokens::Words, true, 2);
        assert_eq!(v.tokens, vec!["<pad>", "<unk>", "\n", "cat", "the"]);
        let ids = v.encode("The cat\nthe dog");
        assert_eq!(v.decode(&ids), "the cat\nthe <unk>");
    }

    #[test]
    fn save_load_round_trip() -> Result<(), TextDataError> {
        let dir = tempfile::tempdir().map_err(|e| TextDataError::Io {
            path: "tmp".into(),
            source: e,
        })?;
        let p = dir.path().join("vocab.json");
        let v = Vocab::build(["hello"], Tokens::Chars, true, 1);
        v.save(&p)?;
        let back = Vocab::load(&p)?;
        assert_eq!(back, v);
        assert_eq!(back.encode("HELLO"), v.encode("hello"));
        Ok(())
    }
}
