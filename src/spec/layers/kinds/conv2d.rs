//! Conv2d: a 2-D convolution, `[c, h, w] -> [out, h', w']`.

use super::{Inference, LayerKind, Scripts, not_this_kind};
use crate::spec::layers::LayerSpec;
use crate::spec::layers::editing::{LayerField, count};
use crate::spec::layers::shapes::Rule;

pub(super) static KIND: LayerKind = LayerKind {
    name: "Conv2d",
    help: "Slides small learned filters over the image; finds local patterns like edges.",
    takes_tokens: false,
    prunable: true,
    has_params: true,
    template: || LayerSpec::Conv2d {
        out: 8,
        kernel: 3,
        stride: 1,
        padding: 1,
    },
    fields,
    shape,
    pytorch_scripts: Scripts::Images,
    pytorch,
    inference,
};

fn fields(layer: &mut LayerSpec) -> Vec<LayerField<'_>> {
    let LayerSpec::Conv2d {
        out,
        kernel,
        stride,
        padding,
    } = layer
    else {
        return Vec::new();
    };
    vec![
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
    ]
}

fn shape(layer: &LayerSpec, _: usize, shape: &[usize]) -> Rule {
    let &LayerSpec::Conv2d {
        out,
        kernel,
        stride,
        padding,
    } = layer
    else {
        return Err(not_this_kind(KIND.name));
    };
    if out == 0 || kernel == 0 || stride == 0 {
        return Err("out, kernel and stride must be at least 1".into());
    }
    let [c, h, w] = shape else {
        return Err(format!(
            "Conv2d needs a [channels, height, width] input but gets {shape:?}; \
             convolutions must come before Flatten"
        ));
    };
    let (hp, wp) = (h + 2 * padding, w + 2 * padding);
    if hp < kernel || wp < kernel {
        return Err(format!(
            "kernel {kernel} is larger than the padded input {hp}x{wp}; \
             use a smaller kernel or fewer pooling layers before it"
        ));
    }
    let ho = (hp - kernel) / stride + 1;
    let wo = (wp - kernel) / stride + 1;
    Ok((vec![out, ho, wo], out * c * kernel * kernel + out))
}

fn pytorch(layer: &LayerSpec, shape: &[usize]) -> String {
    let LayerSpec::Conv2d {
        out,
        kernel,
        stride,
        padding,
    } = layer
    else {
        return not_this_kind(KIND.name);
    };
    format!(
        "nn.Conv2d({}, {out}, kernel_size={kernel}, stride={stride}, padding={padding})",
        shape[0]
    )
}

fn inference(layer: &LayerSpec) -> Inference {
    let &LayerSpec::Conv2d {
        kernel,
        stride,
        padding,
        ..
    } = layer
    else {
        return Inference::Opaque;
    };
    Inference::Conv {
        kernel,
        stride,
        padding,
    }
}
