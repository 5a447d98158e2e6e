//! A corpus's documents in one buffer: their texts back to back in a single
//! `String` and where each ends, instead of one allocation per document (a
//! 100 MB file of short lines would otherwise cost a header and an allocation
//! per line on top of its text).
//!
//! Contract: document `i` reads back exactly as it was pushed; a file's lines
//! ([`Docs::lines_of`]) are its non-empty lines trimmed, as `str::lines` and
//! `str::trim` give them, compacted in the file's own buffer (no second copy).

use std::ops::Index;

/// Documents, in order, in one buffer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Docs {
    text: String,
    /// End of each document in `text` (the start is the previous end).
    ends: Vec<usize>,
}

impl Docs {
    /// No documents.
    pub fn new() -> Self {
        Self::default()
    }

    /// The non-empty lines of `text`, trimmed, reusing `text`'s buffer.
    pub fn lines_of(text: String) -> Self {
        let base = text.as_ptr() as usize;
        let spans: Vec<(usize, usize)> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| {
                let start = l.as_ptr() as usize - base;
                (start, start + l.len())
            })
            .collect();
        let mut bytes = text.into_bytes();
        let mut ends = Vec::with_capacity(spans.len());
        let mut end = 0;
        // Each line moves left (or stays): the write cursor never passes the read.
        for (start, stop) in spans {
            bytes.copy_within(start..stop, end);
            end += stop - start;
            ends.push(end);
        }
        bytes.truncate(end);
        bytes.shrink_to_fit();
        // Whole lines of valid UTF-8, moved as they were: still valid.
        let text = String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        Self { text, ends }
    }

    /// Number of documents.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Bytes of text in all documents together.
    pub fn text_bytes(&self) -> usize {
        self.text.len()
    }

    /// Document `i`, if there is one.
    pub fn get(&self, i: usize) -> Option<&str> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        Some(&self.text[start..end])
    }

    /// The documents in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }

    /// Appends a document.
    pub fn push(&mut self, doc: &str) {
        self.text.push_str(doc);
        self.ends.push(self.text.len());
    }

    /// The documents at `idx`, in that order.
    pub fn subset(&self, idx: &[usize]) -> Self {
        idx.iter().filter_map(|&i| self.get(i)).collect()
    }
}

impl Index<usize> for Docs {
    type Output = str;

    fn index(&self, i: usize) -> &str {
        match self.get(i) {
            Some(doc) => doc,
            None => panic!("document {i} of {}", self.len()),
        }
    }
}

impl<S: AsRef<str>> FromIterator<S> for Docs {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        let mut docs = Self::new();
        docs.extend(iter);
        docs
    }
}

impl<S: AsRef<str>> Extend<S> for Docs {
    fn extend<I: IntoIterator<Item = S>>(&mut self, iter: I) {
        for doc in iter {
            self.push(doc.as_ref());
        }
    }
}

impl From<Vec<String>> for Docs {
    fn from(docs: Vec<String>) -> Self {
        docs.into_iter().collect()
    }
}

impl<S: AsRef<str>> PartialEq<Vec<S>> for Docs {
    fn eq(&self, other: &Vec<S>) -> bool {
        self.len() == other.len() && self.iter().zip(other).all(|(a, b)| a == b.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_trimmed_non_empty_and_read_back_in_order() {
        let text = "  first \r\n\n\tsecond line\n   \nçà et là  \nlast".to_string();
        let docs = Docs::lines_of(text.clone());
        let want: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(docs, want);
        assert_eq!(docs.len(), 4);
        assert_eq!(&docs[2], "çà et là");
        assert_eq!(docs.get(4), None);
        assert_eq!(
            docs.text_bytes(),
            want.iter().map(|l| l.len()).sum::<usize>()
        );
        assert!(Docs::lines_of(" \n\n".into()).is_empty());
    }

    #[test]
    fn pushed_documents_and_subsets_keep_their_text() {
        let mut docs: Docs = ["a", "", "bc"].into_iter().collect();
        docs.push("déf");
        assert_eq!(docs, vec!["a", "", "bc", "déf"]);
        assert_eq!(docs.subset(&[3, 0, 9]), vec!["déf", "a"]);
        assert_eq!(docs.iter().collect::<String>(), "abcdéf");
    }
}
