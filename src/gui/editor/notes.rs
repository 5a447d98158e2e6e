//! The experiment's notes beside the views (lessons carry their instructions
//! there), rendered from the little markdown they use: `#` and `##` headings,
//! `-` and numbered list items (indented continuation lines join the item),
//! paragraphs, `code` spans and **bold**.
//!
//! Contract: [`blocks`] is a pure parse that accepts any text (unknown markup is
//! shown as written, an unclosed marker runs to the end of its line);
//! [`notes_view`] only draws.

use egui::text::{LayoutJob, TextFormat};
use egui::{Color32, FontId, RichText, Ui};

/// One block of the notes.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// A heading: level (1 for `#`, 2 for `##` and deeper) and text.
    Heading(u8, String),
    /// A list item: its marker ("•" or "3.") and text.
    Item(String, String),
    /// A paragraph (its lines joined by spaces).
    Paragraph(String),
}

/// Splits `text` into blocks.
pub fn blocks(text: &str) -> Vec<Block> {
    let mut out: Vec<Block> = Vec::new();
    let mut open = false; // the last block takes continuation lines
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() {
            open = false;
            continue;
        }
        if let Some(h) = line.strip_prefix('#') {
            let level = if h.starts_with('#') { 2 } else { 1 };
            out.push(Block::Heading(
                level,
                h.trim_start_matches('#').trim().to_string(),
            ));
            open = false;
            continue;
        }
        if let Some(item) = line.strip_prefix("- ").or_else(|| line.strip_prefix("* ")) {
            out.push(Block::Item("•".into(), item.trim().to_string()));
            open = true;
            continue;
        }
        if let Some((n, rest)) = line.split_once(". ")
            && !n.is_empty()
            && n.len() <= 3
            && n.chars().all(|c| c.is_ascii_digit())
        {
            out.push(Block::Item(format!("{n}."), rest.trim().to_string()));
            open = true;
            continue;
        }
        match out.last_mut() {
            Some(Block::Item(_, t) | Block::Paragraph(t)) if open => {
                t.push(' ');
                t.push_str(line);
            }
            _ => {
                out.push(Block::Paragraph(line.to_string()));
                open = true;
            }
        }
    }
    out
}

/// A piece of inline text: (text, is code, is bold).
pub type Span = (String, bool, bool);

/// Inline spans of `text`.
pub fn spans(text: &str) -> Vec<Span> {
    let mut out = Vec::new();
    let mut rest = text;
    let mut bold = false;
    while !rest.is_empty() {
        let code_at = rest.find('`');
        let bold_at = rest.find("**");
        match (code_at, bold_at) {
            (Some(c), b) if b.is_none_or(|b| c < b) => {
                push(&mut out, &rest[..c], false, bold);
                let after = &rest[c + 1..];
                let end = after.find('`').unwrap_or(after.len());
                push(&mut out, &after[..end], true, bold);
                rest = after.get(end + 1..).unwrap_or("");
            }
            (_, Some(b)) => {
                push(&mut out, &rest[..b], false, bold);
                bold = !bold;
                rest = &rest[b + 2..];
            }
            _ => {
                push(&mut out, rest, false, bold);
                rest = "";
            }
        }
    }
    out
}

fn push(out: &mut Vec<Span>, s: &str, code: bool, bold: bool) {
    if !s.is_empty() {
        out.push((s.to_string(), code, bold));
    }
}

fn job(ui: &Ui, prefix: &str, text: &str) -> LayoutJob {
    let normal = ui.visuals().text_color();
    let strong = ui.visuals().strong_text_color();
    let size = 13.5;
    let mut job = LayoutJob::default();
    if !prefix.is_empty() {
        job.append(
            &format!("{prefix} "),
            0.0,
            TextFormat::simple(FontId::proportional(size), normal),
        );
    }
    for (s, code, bold) in spans(text) {
        let format = if code {
            TextFormat {
                font_id: FontId::monospace(size - 1.0),
                color: strong,
                background: Color32::from_gray(55),
                ..TextFormat::default()
            }
        } else {
            TextFormat::simple(
                FontId::proportional(size),
                if bold { strong } else { normal },
            )
        };
        job.append(&s, 0.0, format);
    }
    job
}

/// Draws the notes.
pub fn notes_view(ui: &mut Ui, notes: &str) {
    for b in blocks(notes) {
        match b {
            Block::Heading(level, text) => {
                ui.add_space(if level == 1 { 2.0 } else { 6.0 });
                let size = if level == 1 { 19.0 } else { 15.5 };
                ui.label(RichText::new(text).size(size).strong());
            }
            Block::Item(marker, text) => {
                ui.horizontal_top(|ui| {
                    ui.add_space(12.0);
                    let job = job(ui, &marker, &text);
                    ui.add(egui::Label::new(job).wrap());
                });
            }
            Block::Paragraph(text) => {
                ui.add_space(2.0);
                let job = job(ui, "", &text);
                ui.add(egui::Label::new(job).wrap());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_lists_and_paragraphs() {
        let text = "# Title\n\nSome **bold**\ntext.\n\n## Try\n- one\n  more\n- two\n3. three\n";
        assert_eq!(
            blocks(text),
            [
                Block::Heading(1, "Title".into()),
                Block::Paragraph("Some **bold** text.".into()),
                Block::Heading(2, "Try".into()),
                Block::Item("•".into(), "one more".into()),
                Block::Item("•".into(), "two".into()),
                Block::Item("3.".into(), "three".into()),
            ]
        );
    }

    #[test]
    fn inline_code_and_bold_and_unclosed_markers() {
        let cases: [(&str, Vec<Span>); 3] = [
            (
                "a `x=1` **b**",
                vec![
                    ("a ".into(), false, false),
                    ("x=1".into(), true, false),
                    (" ".into(), false, false),
                    ("b".into(), false, true),
                ],
            ),
            (
                "open `code",
                vec![("open ".into(), false, false), ("code".into(), true, false)],
            ),
            ("**", vec![]),
        ];
        for (text, want) in cases {
            assert_eq!(spans(text), want, "{text}");
        }
    }
}
