//! What the model editor knows of each layer kind, as data it draws without a
//! match of its own: the palette entry (a template with usual settings), a
//! sentence of help, and the numbers a user may change with their names, help
//! and ranges. A new kind adds its entries here and its shape rule in
//! `shapes.rs`; the editor needs no change.

use super::LayerSpec;

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

fn count<'a>(
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
fn fraction<'a>(
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

impl LayerSpec {
    /// One layer of every kind, with usual settings, in the editor's order.
    pub fn templates() -> Vec<LayerSpec> {
        vec![
            Self::Linear { out: 64 },
            Self::Conv2d {
                out: 8,
                kernel: 3,
                stride: 1,
                padding: 1,
            },
            Self::MaxPool2d {
                kernel: 2,
                stride: None,
            },
            Self::Flatten,
            Self::ReLU,
            Self::Tanh,
            Self::Sigmoid,
            Self::GELU,
            Self::Dropout { p: 0.2 },
            Self::BatchNorm {
                momentum: 0.1,
                eps: 1e-5,
            },
            Self::Embedding { dim: 32 },
            Self::LSTM {
                hidden: 128,
                layers: 1,
                dropout: 0.0,
            },
            Self::GRU {
                hidden: 128,
                layers: 1,
                dropout: 0.0,
            },
            Self::PositionEmbedding { context: 64 },
            Self::Transformer {
                heads: 4,
                width: 128,
            },
            Self::MeanPool,
            Self::LastStep,
        ]
    }

    /// What the layer does, in a sentence for a tooltip.
    pub fn help(&self) -> &'static str {
        match self {
            Self::Linear { .. } => {
                "Fully connected: every output is a weighted sum of all inputs plus a bias."
            }
            Self::Conv2d { .. } => {
                "Slides small learned filters over the image; finds local patterns like edges."
            }
            Self::MaxPool2d { .. } => {
                "Keeps the largest value in each window: halves the image, keeps strong features."
            }
            Self::Flatten => {
                "Turns a [channels, height, width] image into one long vector for Linear layers."
            }
            Self::ReLU => {
                "max(0, x): the non-linearity that lets stacked layers learn more than a line."
            }
            Self::Tanh => "Squashes values into (-1, 1).",
            Self::Sigmoid => "Squashes values into (0, 1).",
            Self::GELU => "A smooth ReLU, used in transformers.",
            Self::Dropout { .. } => {
                "Randomly zeroes activations while training so the net cannot rely on any one."
            }
            Self::BatchNorm { .. } => {
                "Normalises each feature over the batch; often speeds up training."
            }
            Self::Embedding { .. } => {
                "Text: turns each token id into a learned vector (first layer of a text model)."
            }
            Self::LSTM { .. } => {
                "Text: reads the sequence step by step, keeping a memory with gates."
            }
            Self::GRU { .. } => "Text: like an LSTM with fewer gates; often as good and faster.",
            Self::PositionEmbedding { .. } => {
                "Text: adds a learned vector per position, so attention knows word order."
            }
            Self::Transformer { .. } => {
                "Text: causal self-attention then a feed-forward net; each step looks at the past."
            }
            Self::MeanPool => "Text classifiers: averages the steps into one vector.",
            Self::LastStep => "Text classifiers: keeps only the last step's vector.",
        }
    }

    /// The numbers the editor lets a user change, in the order shown.
    pub fn fields(&mut self) -> Vec<LayerField<'_>> {
        match self {
            Self::Linear { out } => vec![count(
                "out",
                "Number of output features (neurons) of this layer.",
                out,
                1,
                8192,
            )],
            Self::Conv2d {
                out,
                kernel,
                stride,
                padding,
            } => vec![
                count(
                    "filters",
                    "Output channels: how many different filters are learned.",
                    out,
                    1,
                    512,
                ),
                count(
                    "kernel",
                    "Filter size in pixels (3 or 5 are usual).",
                    kernel,
                    1,
                    11,
                ),
                count(
                    "stride",
                    "Step between filter positions; 2 halves the image.",
                    stride,
                    1,
                    4,
                ),
                count(
                    "pad",
                    "Zeros added around the image; kernel/2 keeps the size.",
                    padding,
                    0,
                    5,
                ),
            ],
            Self::MaxPool2d { kernel, .. } => vec![count(
                "window",
                "Pooling window size; 2 halves height and width.",
                kernel,
                1,
                8,
            )],
            Self::Dropout { p } => vec![fraction(
                "p",
                "Probability that an activation is zeroed during training (0.1-0.5 is usual).",
                p,
                0.95,
                Some(2),
            )],
            Self::BatchNorm { momentum, .. } => vec![fraction(
                "momentum",
                "How fast the running mean/variance used at test time follow the batches.",
                momentum,
                1.0,
                None,
            )],
            Self::Embedding { dim } => vec![count(
                "dim",
                "Size of each token's learned vector.",
                dim,
                1,
                4096,
            )],
            Self::LSTM { hidden, layers, .. } | Self::GRU { hidden, layers, .. } => vec![
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
            ],
            Self::PositionEmbedding { context } => vec![count(
                "context",
                "Longest sequence the model can read.",
                context,
                1,
                4096,
            )],
            Self::Transformer { heads, width } => vec![
                count(
                    "heads",
                    "Attention heads: each looks for a different kind of relation.",
                    heads,
                    1,
                    64,
                ),
                count(
                    "width",
                    "Hidden size of the feed-forward part (4 x the input is usual).",
                    width,
                    1,
                    16384,
                ),
            ],
            Self::Flatten
            | Self::ReLU
            | Self::Tanh
            | Self::Sigmoid
            | Self::GELU
            | Self::MeanPool
            | Self::LastStep => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
