//! A small causal transformer block, `[b, t, d] -> [b, t, d]`: pre-norm
//! self-attention where step t sees only steps <= t, then a GELU feed-forward
//! network, each added back to its input. Plain candle ops, so autograd and
//! every device work unchanged; on the CPU in f32 with `Kernels::Fast` the
//! same block runs as one fused op (`block_fused`).

use candle_core::{D, DType, Device, Result, Tensor};
use candle_nn::{Linear, Module};

use super::Kernels;
use super::init::{uniform, uniform_bound};
use super::kernels::block_fused::transformer_block;
use super::kernels::cpu_data::fast_cpu;
use crate::util::rng::Rng;

/// Layer norm over the last axis, from basic ops (their gradients are all known).
struct Norm {
    weight: Tensor,
    bias: Tensor,
}

impl Norm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        // Under mixed precision the norm runs in f32 (its weights stay f32): the
        // variance of a low-precision row is too coarse.
        if x.dtype() != DType::F32 {
            return self.forward(&x.to_dtype(DType::F32)?)?.to_dtype(x.dtype());
        }
        let mean = x.mean_keepdim(D::Minus1)?;
        let xc = x.broadcast_sub(&mean)?;
        let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
        xc.broadcast_div(&(var + 1e-5)?.sqrt()?)?
            .broadcast_mul(&self.weight)?
            .broadcast_add(&self.bias)
    }
}

/// One transformer block.
pub(crate) struct TransformerBlock {
    heads: usize,
    norm1: Norm,
    qkv: Linear,
    proj: Linear,
    norm2: Norm,
    ff1: Linear,
    ff2: Linear,
}

impl TransformerBlock {
    /// Creates the weights for width `d`, registering each with `param`.
    pub(crate) fn new(
        d: usize,
        heads: usize,
        width: usize,
        rng: &mut Rng,
        device: &Device,
        param: &mut dyn FnMut(&str, Tensor) -> Result<Tensor>,
    ) -> Result<Self> {
        let mut linear = |name: &str, out: usize, inp: usize| -> Result<Linear> {
            let b = uniform_bound(inp);
            let w = param(
                &format!("{name}.weight"),
                uniform(rng, &[out, inp], b, device)?,
            )?;
            let bias = param(&format!("{name}.bias"), uniform(rng, &[out], b, device)?)?;
            Ok(Linear::new(w, Some(bias)))
        };
        let qkv = linear("attn.qkv", 3 * d, d)?;
        let proj = linear("attn.proj", d, d)?;
        let ff1 = linear("ff1", width, d)?;
        let ff2 = linear("ff2", d, width)?;
        let mut norm = |name: &str| -> Result<Norm> {
            Ok(Norm {
                weight: param(
                    &format!("{name}.weight"),
                    Tensor::ones(d, candle_core::DType::F32, device)?,
                )?,
                bias: param(
                    &format!("{name}.bias"),
                    Tensor::zeros(d, candle_core::DType::F32, device)?,
                )?,
            })
        };
        Ok(Self {
            heads,
            norm1: norm("norm1")?,
            qkv,
            proj,
            norm2: norm("norm2")?,
            ff1,
            ff2,
        })
    }

    /// The same block with its Linear weights cast to `dtype` (mixed precision);
    /// the norms keep their f32 weights and normalise in f32.
    pub(crate) fn cast(&self, dtype: DType) -> Result<Self> {
        let linear = |l: &Linear| -> Result<Linear> {
            Ok(Linear::new(
                l.weight().to_dtype(dtype)?,
                l.bias().map(|b| b.to_dtype(dtype)).transpose()?,
            ))
        };
        let norm = |n: &Norm| Norm {
            weight: n.weight.clone(),
            bias: n.bias.clone(),
        };
        Ok(Self {
            heads: self.heads,
            norm1: norm(&self.norm1),
            qkv: linear(&self.qkv)?,
            proj: linear(&self.proj)?,
            norm2: norm(&self.norm2),
            ff1: linear(&self.ff1)?,
            ff2: linear(&self.ff2)?,
        })
    }

    pub(crate) fn forward(&self, x: &Tensor, kernels: Kernels) -> Result<Tensor> {
        if fast_cpu(x, kernels) {
            return self.forward_fused(x);
        }
        let qkv = self.qkv.forward(&self.norm1.forward(x)?)?;
        let att = attention_reference(&qkv, self.heads)?;
        let x = (x + self.proj.forward(&att)?)?;
        let ff = self
            .ff2
            .forward(&self.ff1.forward(&self.norm2.forward(&x)?)?.gelu_erf()?)?;
        x + ff
    }

    /// The same block as one fused CPU op (f32): no head split or merge
    /// copies, each bias added inside its GEMM, no intermediate tensors.
    fn forward_fused(&self, x: &Tensor) -> Result<Tensor> {
        let bias = |l: &Linear| -> Result<Tensor> {
            l.bias().cloned().ok_or_else(|| {
                candle_core::Error::Msg("transformer block: a linear layer without bias".into())
            })
        };
        let (qb, pb, f1b, f2b) = (
            bias(&self.qkv)?,
            bias(&self.proj)?,
            bias(&self.ff1)?,
            bias(&self.ff2)?,
        );
        let params = [
            &self.norm1.weight,
            &self.norm1.bias,
            self.qkv.weight(),
            &qb,
            self.proj.weight(),
            &pb,
            &self.norm2.weight,
            &self.norm2.bias,
            self.ff1.weight(),
            &f1b,
            self.ff2.weight(),
            &f2b,
        ];
        transformer_block(x, params, self.heads)
    }
}

/// Causal self-attention of `qkv [b, t, 3d]` (the last axis `(q | k | v)`, each
/// `(heads, dh)`) -> `[b, t, d]` in candle ops: what GPUs, 16-bit runs and
/// `Kernels::Reference` take, and what `attention_fused` is tested against.
pub(crate) fn attention_reference(qkv: &Tensor, heads: usize) -> Result<Tensor> {
    let (b, t, d3) = qkv.dims3()?;
    let (d, dh) = (d3 / 3, d3 / 3 / heads);
    let qkv = qkv.reshape((b, t, 3, heads, dh))?;
    let part = |i: usize| -> Result<Tensor> {
        qkv.narrow(2, i, 1)?
            .squeeze(2)?
            .transpose(1, 2)?
            .contiguous()
    };
    let (q, k, v) = (part(0)?, part(1)?, part(2)?);
    let scores = (q.matmul(&k.t()?)? / (dh as f64).sqrt())?;
    // The softmax runs in f32 under mixed precision (its exp and sum are where
    // low precision overflows or loses the small weights).
    let scores = scores
        .to_dtype(DType::F32)?
        .broadcast_add(&causal_mask(t, qkv.device())?)?;
    candle_nn::ops::softmax(&scores, D::Minus1)?
        .to_dtype(v.dtype())?
        .matmul(&v)?
        .transpose(1, 2)?
        .reshape((b, t, d))
}

/// `[t, t]`: 0 where a step may look (itself and the past), -inf for the future.
fn causal_mask(t: usize, device: &Device) -> Result<Tensor> {
    let mask: Vec<f32> = (0..t)
        .flat_map(|i| (0..t).map(move |j| if j <= i { 0.0 } else { f32::NEG_INFINITY }))
        .collect();
    Tensor::from_vec(mask, (t, t), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn future_steps_do_not_change_the_past() -> Result<()> {
        let mut rng = Rng::new(3);
        let mut keep = |_: &str, t: Tensor| Ok(t);
        let block = TransformerBlock::new(8, 2, 16, &mut rng, &Device::Cpu, &mut keep)?;
        let a = uniform(&mut rng, &[1, 5, 8], 1.0, &Device::Cpu)?;
        let tail = uniform(&mut rng, &[1, 2, 8], 1.0, &Device::Cpu)?;
        let b = Tensor::cat(&[a.narrow(1, 0, 3)?, tail], 1)?;
        for kernels in [Kernels::Reference, Kernels::Fast] {
            let ya = block.forward(&a, kernels)?.narrow(1, 0, 3)?;
            let yb = block.forward(&b, kernels)?.narrow(1, 0, 3)?;
            let diff = (ya - yb)?
                .abs()?
                .flatten_all()?
                .max(0)?
                .to_scalar::<f32>()?;
            assert!(diff < 1e-6, "{kernels:?}: {diff}");
        }
        Ok(())
    }

    /// The fused block equals the candle-op block, output and every gradient.
    #[test]
    fn fused_block_matches_the_reference_with_gradients() -> Result<()> {
        use candle_core::Var;
        let mut rng = Rng::new(9);
        let mut vars = Vec::new();
        let mut keep = |_: &str, t: Tensor| -> Result<Tensor> {
            let v = Var::from_tensor(&t)?;
            vars.push(v.clone());
            Ok(v.as_tensor().clone())
        };
        let block = TransformerBlock::new(12, 3, 20, &mut rng, &Device::Cpu, &mut keep)?;
        let x = Var::from_tensor(&uniform(&mut rng, &[2, 5, 12], 1.0, &Device::Cpu)?)?;
        vars.push(x.clone());
        let up = uniform(&mut rng, &[2, 5, 12], 1.0, &Device::Cpu)?;
        let run = |kernels: Kernels| -> Result<Vec<Tensor>> {
            let y = block.forward(x.as_tensor(), kernels)?;
            let grads = (&y * &up)?.sum_all()?.backward()?;
            let mut out = vec![y];
            for v in &vars {
                out.push(
                    grads
                        .get(v)
                        .cloned()
                        .ok_or_else(|| candle_core::Error::Msg("missing gradient".into()))?,
                );
            }
            Ok(out)
        };
        let (fast, reference) = (run(Kernels::Fast)?, run(Kernels::Reference)?);
        assert_eq!(fast.len(), 14);
        for (i, (f, r)) in fast.iter().zip(&reference).enumerate() {
            let diff = (f - r)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
            assert!(diff < 1e-4, "tensor {i}: {diff}");
        }
        Ok(())
    }
}
