//! The layer list: each entry is one step applied to a sample. Input sizes are not
//! written in the file; they follow from the previous layer's output shape.
//!
//! A layer kind is the [`LayerSpec`] variant here (its fields are the file
//! format) plus one file in `kinds/` whose [`LayerKind`] descriptor holds
//! everything about it that needs neither candle nor egui: name, help, palette
//! template, editable fields, shape rule and parameter count, flags, its
//! PyTorch module and what it computes at inference ([`Inference`], which the
//! ONNX and int8 exporters read). `kinds/mod.rs` lists the kinds ([`KINDS`])
//! and maps each variant to its descriptor. Outside spec a kind has only its
//! candle builder (`model/build.rs`, `build_layer`). `shapes.rs` walks a list
//! through the rules ([`infer_shapes`]); `editing.rs` holds the field types
//! the editor draws. ARCHITECTURE.md, "Adding a layer kind", lists the steps.

mod editing;
mod kinds;
mod shapes;

pub use editing::{FieldValue, LayerField};
pub use kinds::{Elementwise, Inference, KINDS, LayerKind, Scripts, kind_names};
pub use shapes::{LayerShapeInfo, infer_shapes};

use serde::{Deserialize, Serialize};

/// Shape of one sample (no batch axis), e.g. `[1, 28, 28]` or `[128]`.
pub type Shape = Vec<usize>;

/// One layer of a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum LayerSpec {
    /// Fully connected: `[n] -> [out]`.
    Linear {
        /// Output features.
        out: usize,
    },
    /// 2-D convolution: `[c, h, w] -> [out, h', w']`.
    Conv2d {
        /// Output channels (filters).
        out: usize,
        /// Square kernel size.
        kernel: usize,
        /// Step between kernel positions.
        #[serde(default = "one")]
        stride: usize,
        /// Zeros added around each side.
        #[serde(default)]
        padding: usize,
    },
    /// Max over square windows: `[c, h, w] -> [c, h/k, w/k]`.
    MaxPool2d {
        /// Window size.
        kernel: usize,
        /// Step between windows (defaults to the window size).
        #[serde(default)]
        stride: Option<usize>,
    },
    /// Everything into one vector: `[c, h, w] -> [c*h*w]`.
    Flatten,
    /// max(0, x).
    ReLU,
    /// Hyperbolic tangent.
    Tanh,
    /// Logistic sigmoid.
    Sigmoid,
    /// Gaussian error linear unit.
    GELU,
    /// Zeroes each activation with probability `p` while training.
    Dropout {
        /// Drop probability, in [0, 1).
        p: f64,
    },
    /// Normalises each feature (or channel) over the batch; running stats for eval.
    BatchNorm {
        /// Momentum of the running mean/variance.
        #[serde(default = "default_bn_momentum")]
        momentum: f64,
        /// Added to the variance for stability.
        #[serde(default = "default_bn_eps")]
        eps: f64,
    },
    /// Token ids to vectors: `[t, vocab] -> [t, dim]` (the input is written as
    /// one-hot rows; the vocabulary size comes from the data).
    Embedding {
        /// Vector size per token.
        dim: usize,
    },
    /// Long short-term memory over the sequence: `[t, d] -> [t, hidden]`.
    LSTM {
        /// State size.
        hidden: usize,
        /// Stacked layers.
        #[serde(default = "one")]
        layers: usize,
        /// Dropout between stacked layers while training.
        #[serde(default)]
        dropout: f64,
    },
    /// Gated recurrent unit over the sequence: `[t, d] -> [t, hidden]`.
    GRU {
        /// State size.
        hidden: usize,
        /// Stacked layers.
        #[serde(default = "one")]
        layers: usize,
        /// Dropout between stacked layers while training.
        #[serde(default)]
        dropout: f64,
    },
    /// Learned position vectors added to each step: `[t, d] -> [t, d]`, t <= context.
    PositionEmbedding {
        /// Longest sequence it can handle.
        context: usize,
    },
    /// A causal (each step sees only the past) pre-norm transformer block:
    /// self-attention then a feed-forward network, `[t, d] -> [t, d]`.
    Transformer {
        /// Attention heads (`d` must divide by it).
        heads: usize,
        /// Hidden size of the feed-forward network (4 * d is usual).
        width: usize,
    },
    /// Mean over the (non-padding) steps: `[t, d] -> [d]`.
    MeanPool,
    /// The last step only: `[t, d] -> [d]` (sequences are padded on the left).
    LastStep,
}

fn one() -> usize {
    1
}
fn default_bn_momentum() -> f64 {
    0.1
}
fn default_bn_eps() -> f64 {
    1e-5
}

impl LayerSpec {
    /// Short name shown in tables and errors.
    pub fn kind(&self) -> &'static str {
        self.descriptor().name
    }

    /// Whether this layer reads token ids (it must come first, on text data).
    pub fn takes_tokens(&self) -> bool {
        self.descriptor().takes_tokens
    }

    /// Whether magnitude pruning applies to this layer's weight matrices.
    pub fn prunable(&self) -> bool {
        self.descriptor().prunable
    }

    /// Whether this layer owns trainable parameters.
    pub fn has_params(&self) -> bool {
        self.descriptor().has_params
    }

    /// What the layer does, in a sentence for a tooltip.
    pub fn help(&self) -> &'static str {
        self.descriptor().help
    }

    /// One layer of every kind, with usual settings, in the editor's order.
    pub fn templates() -> Vec<LayerSpec> {
        KINDS.iter().map(|k| (k.template)()).collect()
    }

    /// The numbers the editor lets a user change, in the order shown.
    pub fn fields(&mut self) -> Vec<LayerField<'_>> {
        (self.descriptor().fields)(self)
    }

    /// What the layer computes at inference (ONNX, int8).
    pub fn inference(&self) -> Inference {
        (self.descriptor().inference)(self)
    }
}
