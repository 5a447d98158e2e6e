//! MaxPool2d: the max over square windows, `[c, h, w] -> [c, h/k, w/k]`.

use super::{Inference, LayerKind, Scripts, not_this_kind};
use crate::spec::layers::LayerSpec;
use crate::spec::layers::editing::{LayerField, count};
use crate::spec::layers::shapes::Rule;

pub(super) static KIND: LayerKind = LayerKind {
    name: "MaxPool2d",
    help: "Keeps the largest value in each window: halves the image, keeps strong features.",
    takes_tokens: false,
    prunable: false,
    has_params: false,
    template: || LayerSpec::MaxPool2d {
        kernel: 2,
        stride: None,
    },
    fields,
    shape,
    pytorch_scripts: Scripts::Images,
    pytorch,
    inference,
};

fn fields(layer: &mut LayerSpec) -> Vec<LayerField<'_>> {
    let LayerSpec::MaxPool2d { kernel, .. } = layer else {
        return Vec::new();
    };
    vec![count(
        "window",
        "Pooling window size; 2 halves height and width.",
        kernel,
        1,
        8,
    )]
}

/// The window and the step between windows (the window when not given).
fn geometry(layer: &LayerSpec) -> Option<(usize, usize)> {
    match *layer {
        LayerSpec::MaxPool2d { kernel, stride } => Some((kernel, stride.unwrap_or(kernel))),
        _ => None,
    }
}

fn shape(layer: &LayerSpec, _: usize, shape: &[usize]) -> Rule {
    let Some((kernel, stride)) = geometry(layer) else {
        return Err(not_this_kind(KIND.name));
    };
    if kernel == 0 || stride == 0 {
        return Err("kernel and stride must be at least 1".into());
    }
    let [c, h, w] = shape else {
        return Err(format!(
            "MaxPool2d needs a [channels, height, width] input but gets {shape:?}"
        ));
    };
    if *h < kernel || *w < kernel {
        return Err(format!(
            "window {kernel} is larger than the input {h}x{w}; remove this pooling layer"
        ));
    }
    Ok((
        vec![*c, (h - kernel) / stride + 1, (w - kernel) / stride + 1],
        0,
    ))
}

fn pytorch(layer: &LayerSpec, _: &[usize]) -> String {
    let Some((kernel, stride)) = geometry(layer) else {
        return not_this_kind(KIND.name);
    };
    format!("nn.MaxPool2d(kernel_size={kernel}, stride={stride})")
}

fn inference(layer: &LayerSpec) -> Inference {
    match geometry(layer) {
        Some((kernel, stride)) => Inference::MaxPool { kernel, stride },
        None => Inference::Opaque,
    }
}
