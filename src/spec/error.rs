//! Error wording for people: the messages serde and RON write name Rust types
//! (`expected usize`, `struct TrainingSpec`, `option`); [`in_plain_words`] turns
//! them into what a file must hold (`a whole number`, `a (field: value, ...)
//! group`, `a value or None`). The one place this translation lives: every
//! message about an experiment, study or `--set` value passes through it.

/// `message` with Rust type words replaced by plain ones; text it does not
/// recognise is kept as it is.
pub fn in_plain_words(message: &str) -> String {
    let mut out = message.to_string();
    // serde's "invalid type: X, expected Y" and RON's "Expected Y but found X instead".
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = out.strip_prefix(prefix)
            && let Some((found, expected)) = rest.split_once(", expected ")
        {
            out = format!("found {found} where {expected} is expected");
        }
    }
    if let Some(rest) = out.strip_prefix("Expected ")
        && let Some((expected, found)) = rest.split_once(" but found ")
    {
        let found = found.strip_suffix(" instead").unwrap_or(found);
        out = format!("found {found} where {expected} is expected");
    }
    // RON names the Rust struct a field belongs to: "... in `TrainingSpec`".
    out = drop_struct_names(&out);
    for (rust, plain) in REPLACEMENTS {
        out = replace_words(&out, rust, plain);
    }
    // Variant and struct names: `enum DeviceSpec` -> "one of its variants".
    out = replace_prefixed(
        &out,
        "struct variant ",
        "a variant with named fields `Name(field: value)`",
    );
    out = replace_prefixed(
        &out,
        "tuple variant ",
        "a variant with values `Name(value, ...)`",
    );
    out = replace_prefixed(&out, "tuple struct ", "a `(value, ...)` group");
    out = replace_prefixed(&out, "struct ", "a `(field: value, ...)` group");
    out = replace_prefixed(&out, "enum ", "one of the names this field allows");
    out
}

/// Whole-word replacements, longest first where one contains another.
const REPLACEMENTS: &[(&str, &str)] = &[
    ("Expected integer", "expected a whole number"),
    ("Expected float", "expected a number"),
    ("Expected boolean", "expected true or false"),
    ("Expected string", "expected text in quotes"),
    (
        "Expected identifier",
        "expected a name (a variant or field name, not text in quotes)",
    ),
    ("Expected option", "expected Some(...) or None"),
    (
        "Non-whitespace trailing characters",
        "unexpected text after the value",
    ),
    ("usize", "a whole number (0 or more)"),
    ("u128", "a whole number (0 or more)"),
    ("u64", "a whole number (0 or more)"),
    ("u32", "a whole number (0 or more)"),
    ("u16", "a whole number (0 or more)"),
    ("u8", "a whole number from 0 to 255"),
    ("isize", "a whole number"),
    ("i128", "a whole number"),
    ("i64", "a whole number"),
    ("i32", "a whole number"),
    ("i16", "a whole number"),
    ("i8", "a whole number"),
    ("f64", "a number"),
    ("f32", "a number"),
    ("path string", "a path in quotes, e.g. \"data/train.txt\""),
    ("a string", "text in quotes, e.g. \"name\""),
    ("a boolean", "true or false"),
    ("a sequence", "a list `[a, b, ...]`"),
    ("a map", "a map `{\"key\": value, ...}`"),
    ("an optional value", "Some(...) or None"),
    ("option", "a value or None"),
    ("a unit value", "nothing `()`"),
    ("the unsigned integer", "the whole number"),
    ("the signed integer", "the whole number"),
    ("the floating point number", "the number"),
    ("floating point", "the number"),
    ("integer", "the whole number"),
    ("the string", "the text"),
    ("string", "the text"),
];

/// Replaces `word` where it stands alone (not inside another word or a quote).
fn replace_words(text: &str, word: &str, plain: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut quoted = false;
    while let Some(at) = rest.find(word) {
        let before = &rest[..at];
        quoted ^= before.matches(['"', '`']).count() % 2 == 1;
        let after = &rest[at + word.len()..];
        let alone_before = before
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric() && c != '_');
        let alone_after = after
            .chars()
            .next()
            .is_none_or(|c| !c.is_alphanumeric() && c != '_');
        out.push_str(before);
        if alone_before && alone_after && !quoted {
            out.push_str(plain);
        } else {
            out.push_str(word);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// `struct TrainingSpec` (a Rust name after `prefix`) -> `plain`.
fn replace_prefixed(text: &str, prefix: &str, plain: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(prefix) {
        let (before, after) = (&rest[..at], &rest[at + prefix.len()..]);
        let alone = before
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric());
        let name_len = after
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':' || c == '`'))
            .unwrap_or(after.len());
        let name = &after[..name_len];
        out.push_str(before);
        if alone
            && name
                .trim_matches('`')
                .starts_with(|c: char| c.is_ascii_uppercase())
        {
            out.push_str(plain);
            rest = &after[name_len..];
        } else {
            out.push_str(prefix);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Removes ` in `SomeRustName`` (RON's note of the struct a field belongs to).
fn drop_struct_names(text: &str) -> String {
    let mut out = text.to_string();
    for lead in [" in enum `", " in struct `", " in `"] {
        while let Some(at) = out.find(lead) {
            let tail = &out[at + lead.len()..];
            let Some(end) = tail.find('`') else { break };
            let name = &tail[..end];
            let rust_name = name.starts_with(|c: char| c.is_ascii_uppercase())
                && name.chars().all(|c| c.is_alphanumeric() || c == '_');
            if !rust_name {
                break;
            }
            out.replace_range(at..at + lead.len() + end + 1, "");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_type_words_become_plain_words() {
        let cases = [
            (
                "invalid type: string \"None\", expected usize",
                "found the text \"None\" where a whole number (0 or more) is expected",
            ),
            (
                "Expected f64 but found the string \"x\" instead",
                "found the text \"x\" where a number is expected",
            ),
            (
                "Expected struct TrainingSpec but found a sequence instead",
                "found a list `[a, b, ...]` where a `(field: value, ...)` group is expected",
            ),
            (
                "Expected enum DeviceSpec but found the unsigned integer `3` instead",
                "found the whole number `3` where one of the names this field allows is expected",
            ),
            (
                "Unexpected missing field named `epochs` in `TrainingSpec`",
                "Unexpected missing field named `epochs`",
            ),
            (
                "Unexpected variant named `Adm` in enum `OptimizerSpec`, expected `Sgd` instead",
                "Unexpected variant named `Adm`, expected `Sgd` instead",
            ),
            ("Expected integer", "expected a whole number"),
            ("Expected option", "expected Some(...) or None"),
        ];
        for (rust, plain) in cases {
            assert_eq!(in_plain_words(rust), plain, "from: {rust}");
        }
    }

    #[test]
    fn words_inside_names_and_quotes_are_kept() {
        let kept = "unknown variant `u8x`, expected `Adam` or `Sgd`";
        assert_eq!(in_plain_words(kept), kept);
        let quoted = "found the text \"f64\" where a number is expected";
        assert_eq!(
            in_plain_words("invalid type: string \"f64\", expected f64"),
            quoted
        );
    }
}
