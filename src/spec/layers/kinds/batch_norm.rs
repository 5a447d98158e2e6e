//! BatchNorm: normalises each feature (or channel) over the batch, with
//! running statistics for evaluation; the shape is unchanged.

use super::{Inference, LayerKind, Scripts, not_this_kind};
use crate::spec::layers::LayerSpec;
use crate::spec::layers::editing::{LayerField, fraction};
use crate::spec::layers::shapes::Rule;

pub(super) static KIND: LayerKind = LayerKind {
    name: "BatchNorm",
    help: "Normalises each feature over the batch; often speeds up training.",
    takes_tokens: false,
    prunable: false,
    has_params: true,
    template: || LayerSpec::BatchNorm {
        momentum: 0.1,
        eps: 1e-5,
    },
    fields,
    shape,
    pytorch_scripts: Scripts::Images,
    pytorch,
    inference,
};

fn fields(layer: &mut LayerSpec) -> Vec<LayerField<'_>> {
    let LayerSpec::BatchNorm { momentum, .. } = layer else {
        return Vec::new();
    };
    vec![fraction(
        "momentum",
        "How fast the running mean/variance used at test time follow the batches.",
        momentum,
        1.0,
        None,
    )]
}

fn shape(layer: &LayerSpec, _: usize, shape: &[usize]) -> Rule {
    let &LayerSpec::BatchNorm { momentum, eps } = layer else {
        return Err(not_this_kind(KIND.name));
    };
    if !(0.0..=1.0).contains(&momentum) || eps <= 0.0 {
        return Err("momentum must be in [0, 1] and eps > 0".into());
    }
    let features = match shape {
        [n] | [n, _, _] => *n,
        _ => return Err(format!("BatchNorm cannot normalise {shape:?}")),
    };
    Ok((shape.to_vec(), 2 * features))
}

fn pytorch(layer: &LayerSpec, shape: &[usize]) -> String {
    let LayerSpec::BatchNorm { momentum, eps } = layer else {
        return not_this_kind(KIND.name);
    };
    let kind = if shape.len() == 3 {
        "BatchNorm2d"
    } else {
        "BatchNorm1d"
    };
    format!("nn.{kind}({}, eps={eps}, momentum={momentum})", shape[0])
}

fn inference(layer: &LayerSpec) -> Inference {
    match *layer {
        LayerSpec::BatchNorm { eps, .. } => Inference::BatchNorm { eps },
        _ => Inference::Opaque,
    }
}
