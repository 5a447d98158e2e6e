//! LSTM and GRU: gated recurrent stacks over the sequence, `[t, d] -> [t, hidden]`.
//! The two kinds differ only in their gate count (4 and 3) and their names, so
//! they share every function here; each descriptor picks its own variant.

use super::{Inference, LayerKind, Scripts, not_this_kind};
use crate::spec::layers::LayerSpec;
use crate::spec::layers::editing::{LayerField, recurrent_fields};
use crate::spec::layers::shapes::{Rule, recurrent};

pub(super) static LSTM: LayerKind = LayerKind {
    name: "LSTM",
    help: "Text: reads the sequence step by step, keeping a memory with gates.",
    takes_tokens: false,
    prunable: true,
    has_params: true,
    template: || LayerSpec::LSTM {
        hidden: 128,
        layers: 1,
        dropout: 0.0,
    },
    fields,
    shape,
    pytorch_scripts: Scripts::Text,
    pytorch,
    inference,
};

pub(super) static GRU: LayerKind = LayerKind {
    name: "GRU",
    help: "Text: like an LSTM with fewer gates; often as good and faster.",
    takes_tokens: false,
    prunable: true,
    has_params: true,
    template: || LayerSpec::GRU {
        hidden: 128,
        layers: 1,
        dropout: 0.0,
    },
    fields,
    shape,
    pytorch_scripts: Scripts::Text,
    pytorch,
    inference,
};

/// A recurrent layer's settings, whichever of the two kinds it is.
struct Stack<'a> {
    lstm: bool,
    hidden: &'a mut usize,
    layers: &'a mut usize,
    dropout: f64,
}

impl Stack<'_> {
    fn name(&self) -> &'static str {
        if self.lstm { LSTM.name } else { GRU.name }
    }
}

/// `layer`'s settings, or None for any other kind.
fn stack(layer: &mut LayerSpec) -> Option<Stack<'_>> {
    match layer {
        LayerSpec::LSTM {
            hidden,
            layers,
            dropout,
        } => Some(Stack {
            lstm: true,
            hidden,
            layers,
            dropout: *dropout,
        }),
        LayerSpec::GRU {
            hidden,
            layers,
            dropout,
        } => Some(Stack {
            lstm: false,
            hidden,
            layers,
            dropout: *dropout,
        }),
        _ => None,
    }
}

/// `stack` for a layer only read, through a copy.
fn read<T>(layer: &LayerSpec, f: impl FnOnce(&Stack) -> T) -> Option<T> {
    let mut copy = layer.clone();
    stack(&mut copy).map(|s| f(&s))
}

fn fields(layer: &mut LayerSpec) -> Vec<LayerField<'_>> {
    match stack(layer) {
        Some(s) => recurrent_fields(s.hidden, s.layers),
        None => Vec::new(),
    }
}

fn shape(layer: &LayerSpec, _: usize, shape: &[usize]) -> Rule {
    read(layer, |s| {
        let gates = if s.lstm { 4 } else { 3 };
        recurrent(gates, *s.hidden, *s.layers, s.dropout, shape)
    })
    .unwrap_or_else(|| Err(not_this_kind("LSTM or GRU")))
}

/// The text script's `LSTM` or `GRU` module (its template defines both).
fn pytorch(layer: &LayerSpec, shape: &[usize]) -> String {
    let width = shape.last().copied().unwrap_or(1);
    read(layer, |s| {
        format!(
            "{}({width}, {}, num_layers={}, dropout={})",
            s.name(),
            s.hidden,
            s.layers,
            s.dropout
        )
    })
    .unwrap_or_else(|| not_this_kind("LSTM or GRU"))
}

fn inference(layer: &LayerSpec) -> Inference {
    read(layer, |s| Inference::Recurrent {
        lstm: s.lstm,
        layers: *s.layers,
        hidden: *s.hidden,
    })
    .unwrap_or(Inference::Opaque)
}
