//! The layer kinds, one file each: a [`LayerKind`] descriptor holding every
//! candle-free fact of the kind (name, help, palette template, editable
//! fields, shape rule and parameter count, flags, PyTorch module text, what it
//! computes at inference for ONNX and int8). Everything outside this folder
//! asks the descriptor ([`LayerSpec::descriptor`]) instead of matching on
//! variants; the candle builder of each kind is in `model/build.rs`.
//!
//! Contract: [`KINDS`] lists every variant of [`LayerSpec`] exactly once, in
//! the editor's palette order, and each descriptor's functions are only ever
//! handed a layer of their own kind (`descriptor` is the one match from
//! variant to kind; the tests check that the registry and serde's variant
//! list agree).

mod batch_norm;
mod conv2d;
mod dropout;
mod embedding;
mod flatten;
mod gelu;
mod last_step;
mod linear;
mod max_pool2d;
mod mean_pool;
mod position_embedding;
mod recurrent;
mod relu;
mod sigmoid;
mod tanh;
mod transformer;

use super::LayerSpec;
use super::editing::LayerField;
use super::shapes::Rule;

/// Everything trainlab knows of one layer kind that needs neither candle nor
/// egui. The functions take the layer itself; each is handed only layers of
/// its own kind.
pub struct LayerKind {
    /// Short name shown in tables and errors; the variant's name in files.
    pub name: &'static str,
    /// What the layer does, in a sentence for a tooltip.
    pub help: &'static str,
    /// Whether this layer reads token ids (it must come first, on text data).
    pub takes_tokens: bool,
    /// Whether magnitude pruning applies to this layer's weight matrices.
    pub prunable: bool,
    /// Whether this layer owns trainable parameters.
    pub has_params: bool,
    /// The palette entry: one layer of this kind with usual settings.
    pub template: fn() -> LayerSpec,
    /// The numbers the editor lets a user change, in the order shown.
    pub fields: for<'a> fn(&'a mut LayerSpec) -> Vec<LayerField<'a>>,
    /// The shape after the layer (the `index`-th) given one sample's shape,
    /// and its parameter count; or why it cannot take that input.
    pub shape: fn(&LayerSpec, usize, &[usize]) -> Rule,
    /// Which exported PyTorch scripts can hold this layer.
    pub pytorch_scripts: Scripts,
    /// The PyTorch module that computes the layer on one sample of the given
    /// shape, e.g. `nn.Linear(784, 128)` (the text script's own modules, such
    /// as `LSTM(...)`, are defined by its template).
    pub pytorch: fn(&LayerSpec, &[usize]) -> String,
    /// What the layer computes at inference, for the ONNX and int8 exporters.
    pub inference: fn(&LayerSpec) -> Inference,
}

/// The exported PyTorch scripts a kind appears in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scripts {
    /// Image (and DQN) scripts and text scripts.
    Both,
    /// Only the image script (`nn.Sequential` over `[N, C, H, W]` or `[N, n]`).
    Images,
    /// Only the text script (its modules read `[N, T, d]` sequences).
    Text,
}

impl Scripts {
    /// Whether the image script can hold the kind.
    pub fn images(self) -> bool {
        matches!(self, Self::Both | Self::Images)
    }

    /// Whether the text script can hold the kind.
    pub fn text(self) -> bool {
        matches!(self, Self::Both | Self::Text)
    }
}

/// What a layer computes at inference, as plain data: the ONNX exporter and
/// int8 quantisation read this instead of the kind, so a new kind that
/// computes one of these needs no change there. Parameters are the saved
/// tensors `layers.{i}.<name>`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Inference {
    /// `x W^T + b` with `weight` `[out, in]` and `bias` `[out]`.
    Dense,
    /// A square convolution with `weight` `[out, in, k, k]` and `bias`.
    Conv {
        kernel: usize,
        stride: usize,
        padding: usize,
    },
    /// Max over square windows.
    MaxPool { kernel: usize, stride: usize },
    /// Everything after the batch axis into one.
    Flatten,
    /// A function applied to each value.
    Elementwise(Elementwise),
    /// The input unchanged (dropout at inference).
    Identity,
    /// `(x - running_mean) / sqrt(running_var + eps) * weight + bias` per channel.
    BatchNorm { eps: f64 },
    /// Token ids to rows of `weight`.
    Lookup,
    /// A stack of LSTM (`lstm`) or GRU layers, PyTorch's gate order and names.
    Recurrent {
        lstm: bool,
        layers: usize,
        hidden: usize,
    },
    /// Mean over the real (unpadded) steps.
    MeanPool,
    /// The last step.
    LastStep,
    /// No generic description: ONNX and int8 refuse the layer, naming it.
    Opaque,
}

/// The functions an [`Inference::Elementwise`] layer applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elementwise {
    Relu,
    Tanh,
    Sigmoid,
    /// The exact (erf) GELU.
    Gelu,
}

/// Every kind, in the editor's palette order.
pub static KINDS: [&LayerKind; 17] = [
    &linear::KIND,
    &conv2d::KIND,
    &max_pool2d::KIND,
    &flatten::KIND,
    &relu::KIND,
    &tanh::KIND,
    &sigmoid::KIND,
    &gelu::KIND,
    &dropout::KIND,
    &batch_norm::KIND,
    &embedding::KIND,
    &recurrent::LSTM,
    &recurrent::GRU,
    &position_embedding::KIND,
    &transformer::KIND,
    &mean_pool::KIND,
    &last_step::KIND,
];

impl LayerSpec {
    /// This layer's kind: its descriptor in [`KINDS`].
    // The one match from variant to kind: a new variant fails to compile
    // until it names its file here.
    pub fn descriptor(&self) -> &'static LayerKind {
        match self {
            Self::Linear { .. } => &linear::KIND,
            Self::Conv2d { .. } => &conv2d::KIND,
            Self::MaxPool2d { .. } => &max_pool2d::KIND,
            Self::Flatten => &flatten::KIND,
            Self::ReLU => &relu::KIND,
            Self::Tanh => &tanh::KIND,
            Self::Sigmoid => &sigmoid::KIND,
            Self::GELU => &gelu::KIND,
            Self::Dropout { .. } => &dropout::KIND,
            Self::BatchNorm { .. } => &batch_norm::KIND,
            Self::Embedding { .. } => &embedding::KIND,
            Self::LSTM { .. } => &recurrent::LSTM,
            Self::GRU { .. } => &recurrent::GRU,
            Self::PositionEmbedding { .. } => &position_embedding::KIND,
            Self::Transformer { .. } => &transformer::KIND,
            Self::MeanPool => &mean_pool::KIND,
            Self::LastStep => &last_step::KIND,
        }
    }
}

/// The names of the kinds `which` picks, in [`KINDS`] order, as a phrase:
/// "Linear, Conv2d and Flatten". Error messages list what an exporter covers
/// with it, so a new kind appears there by itself.
pub fn kind_names(which: impl Fn(&LayerKind) -> bool) -> String {
    let names: Vec<&str> = KINDS.iter().filter(|k| which(k)).map(|k| k.name).collect();
    match names.split_last() {
        None => String::new(),
        Some((last, [])) => (*last).to_string(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

/// The message a descriptor's function gives a layer of another kind, which
/// [`LayerSpec::descriptor`] never hands it.
fn not_this_kind(kind: &str) -> String {
    format!("internal: the {kind} rule was given another kind of layer")
}

/// A kind with no editable numbers.
fn no_fields(_: &mut LayerSpec) -> Vec<LayerField<'_>> {
    Vec::new()
}

/// A kind whose output has the input's shape and that has no parameters.
fn same_shape(_: &LayerSpec, _: usize, shape: &[usize]) -> Rule {
    Ok((shape.to_vec(), 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// serde's list of `LayerSpec`'s variants, read off the error an unknown
    /// variant gives.
    fn serde_variants() -> Vec<String> {
        let err = ron::from_str::<LayerSpec>("NoSuchKind")
            .expect_err("not a kind")
            .to_string();
        // Every name in backquotes, less the one asked for and the enum's.
        err.split('`')
            .skip(1)
            .step_by(2)
            .filter(|v| !["NoSuchKind", "LayerSpec"].contains(v))
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn the_registry_lists_every_variant_once() {
        let names: Vec<String> = KINDS.iter().map(|k| k.name.to_string()).collect();
        let mut variants = serde_variants();
        assert_eq!(variants.len(), 17, "{variants:?} from serde");
        variants.sort();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(
            sorted, variants,
            "KINDS must list every LayerSpec variant once"
        );
    }

    #[test]
    fn each_template_is_its_own_kind_and_round_trips_through_ron() {
        for kind in KINDS {
            let t = (kind.template)();
            assert!(std::ptr::eq(t.descriptor(), kind), "{}", kind.name);
            let text = ron::to_string(&t).expect("writes");
            assert!(text.starts_with(kind.name), "{text}");
            let back: LayerSpec = ron::from_str(&text).expect("reads back");
            assert_eq!(back, t);
            assert!(!kind.help.is_empty(), "{} has no help", kind.name);
        }
    }

    #[test]
    fn each_template_has_a_shape_rule_on_the_input_it_is_made_for() {
        let image = [3usize, 8, 8];
        let flat = [12usize];
        let tokens = [6usize, 20];
        let sequence = [6usize, 8];
        for kind in KINDS {
            let t = (kind.template)();
            let inputs: [&[usize]; 4] = [&image, &flat, &tokens, &sequence];
            let accepted: Vec<(Vec<usize>, usize)> = inputs
                .iter()
                .filter_map(|s| (kind.shape)(&t, 0, s).ok())
                .collect();
            assert!(
                !accepted.is_empty(),
                "{} takes none of the inputs",
                kind.name
            );
            for (out, params) in accepted {
                assert!(!out.is_empty(), "{}", kind.name);
                assert_eq!(params > 0, kind.has_params, "{}: {params}", kind.name);
            }
            assert!(!kind.prunable || kind.has_params, "{}", kind.name);
        }
    }

    #[test]
    fn a_descriptor_given_another_kind_says_so_instead_of_panicking() {
        let mut relu = LayerSpec::ReLU;
        for kind in KINDS
            .iter()
            .filter(|k| !(k.fields)(&mut (k.template)()).is_empty())
        {
            assert!((kind.fields)(&mut relu).is_empty(), "{}", kind.name);
            let err = (kind.shape)(&relu, 0, &[4]).expect_err(kind.name);
            assert!(err.starts_with("internal"), "{}: {err}", kind.name);
            assert!(
                (kind.pytorch)(&relu, &[4]).starts_with("internal"),
                "{}",
                kind.name
            );
        }
    }

    #[test]
    fn names_are_listed_in_registry_order() {
        assert_eq!(
            kind_names(|k| k.name.starts_with('L')),
            "Linear, LSTM and LastStep"
        );
        assert_eq!(kind_names(|k| k.name == "GRU"), "GRU");
        assert_eq!(kind_names(|_| false), "");
    }

    #[test]
    fn what_each_exporter_covers_follows_from_the_descriptors() {
        let onnx = kind_names(|k| (k.inference)(&(k.template)()) != Inference::Opaque);
        assert_eq!(
            onnx,
            "Linear, Conv2d, MaxPool2d, Flatten, ReLU, Tanh, Sigmoid, GELU, Dropout, \
             BatchNorm, Embedding, LSTM, GRU, MeanPool and LastStep"
        );
        let images = kind_names(|k| k.pytorch_scripts.images());
        assert_eq!(
            images,
            "Linear, Conv2d, MaxPool2d, Flatten, ReLU, Tanh, Sigmoid, GELU, Dropout and BatchNorm"
        );
        let text = kind_names(|k| !k.pytorch_scripts.images());
        assert_eq!(
            text,
            "Embedding, LSTM, GRU, PositionEmbedding, Transformer, MeanPool and LastStep"
        );
        let prunable = kind_names(|k| k.prunable);
        assert_eq!(prunable, "Linear, Conv2d, LSTM, GRU and Transformer");
        let conv = LayerSpec::Conv2d {
            out: 4,
            kernel: 5,
            stride: 2,
            padding: 1,
        };
        assert_eq!(
            conv.inference(),
            Inference::Conv {
                kernel: 5,
                stride: 2,
                padding: 1
            }
        );
        let pool = LayerSpec::MaxPool2d {
            kernel: 3,
            stride: None,
        };
        assert_eq!(
            pool.inference(),
            Inference::MaxPool {
                kernel: 3,
                stride: 3
            }
        );
    }
}
