//! The editable numbers of a layer as the model editor draws them, without a
//! match of its own: each kind's file (`kinds/`) lists its fields with their
//! names, help and ranges through the constructors here; the palette entry and
//! help sentence are in the same descriptor. A new kind needs no change here
//! nor in the editor.

/// A number of a layer the editor shows.
pub struct LayerField<'a> {
    /// Label beside the number ("filters").
    pub name: &'static str,
    /// Tooltip.
    pub help: &'static str,
    pub value: FieldValue<'a>,
}

/// The number behind a [`LayerField`], with its range.
pub enum FieldValue<'a> {
    /// A whole number (a size, a count).
    Count {
        value: &'a mut usize,
        min: usize,
        max: usize,
    },
    /// A fraction (a probability, a momentum), moved in steps of `speed`.
    Fraction {
        value: &'a mut f64,
        max: f64,
        speed: f64,
        /// Decimals shown, when limited.
        decimals: Option<usize>,
    },
}

pub(super) fn count<'a>(
    name: &'static str,
    help: &'static str,
    value: &'a mut usize,
    min: usize,
    max: usize,
) -> LayerField<'a> {
    LayerField {
        name,
        help,
        value: FieldValue::Count { value, min, max },
    }
}

/// A fraction in [0, `max`], moved in hundredths.
pub(super) fn fraction<'a>(
    name: &'static str,
    help: &'static str,
    value: &'a mut f64,
    max: f64,
    decimals: Option<usize>,
) -> LayerField<'a> {
    LayerField {
        name,
        help,
        value: FieldValue::Fraction {
            value,
            max,
            speed: 0.01,
            decimals,
        },
    }
}

/// The two numbers of a recurrent layer (LSTM, GRU).
pub(super) fn recurrent_fields<'a>(
    hidden: &'a mut usize,
    layers: &'a mut usize,
) -> Vec<LayerField<'a>> {
    vec![
        count(
            "hidden",
            "Size of the memory carried from step to step.",
            hidden,
            1,
            4096,
        ),
        count(
            "layers",
            "Recurrent layers stacked on each other.",
            layers,
            1,
            8,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::layers::LayerSpec;

    #[test]
    fn every_kind_has_a_template_and_help() {
        let templates = LayerSpec::templates();
        let mut kinds: Vec<&str> = templates.iter().map(LayerSpec::kind).collect();
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds.len(), templates.len(), "one template per kind");
        assert_eq!(kinds.len(), 17, "a new kind needs a template here");
        for t in &templates {
            assert!(!t.help().is_empty(), "{} has no help", t.kind());
        }
    }

    #[test]
    fn fields_change_the_layer_and_stay_in_range() {
        let mut conv = LayerSpec::templates()[1].clone();
        for f in conv.fields() {
            if let FieldValue::Count { value, min, max } = f.value {
                assert!(min <= *value && *value <= max, "{} {value}", f.name);
                if f.name == "filters" {
                    *value = 16;
                }
            }
        }
        assert!(
            matches!(conv, LayerSpec::Conv2d { out: 16, .. }),
            "{conv:?}"
        );
    }
}
