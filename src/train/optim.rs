//! SGD (momentum, Nesterov), Adam and AdamW with PyTorch's update rules.
//!
//! Two kernels compute the same update: `Fused` makes one in-place pass over each
//! f32 parameter buffer on the CPU (instead of a graph of ~10 small tensor ops per
//! parameter), `Reference` uses plain candle tensor ops and runs on any device.
//! Tests check that they agree; GPU runs always use `Reference`.

use std::cell::RefCell;
use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, DType, InplaceOp2, Layout, Result, Tensor, Var};

use super::clip::GradScale;
use crate::model::Kernels;
use crate::model::simd_kernel;
use crate::spec::OptimizerSpec;

/// Per-parameter state.
struct Slot {
    var: Var,
    /// First moment (Adam) or momentum buffer (SGD); host copy for the fused path.
    m_host: Vec<f32>,
    v_host: Vec<f32>,
    /// Device copies for the reference path.
    m: Option<Tensor>,
    v: Option<Tensor>,
}

/// An optimizer over a fixed list of parameters.
pub struct Optimizer {
    spec: OptimizerSpec,
    slots: Vec<Slot>,
    step: u64,
    fused: bool,
}

impl Optimizer {
    /// Creates state for `vars`. The fused kernel is used only when every parameter
    /// is an f32 CPU tensor.
    pub fn new(spec: &OptimizerSpec, vars: &[Var], kernel: Kernels) -> Self {
        let fused = kernel == Kernels::Fast
            && vars
                .iter()
                .all(|v| v.device().is_cpu() && v.dtype() == DType::F32);
        let slots = vars
            .iter()
            .map(|var| Slot {
                var: var.clone(),
                m_host: if fused {
                    vec![0.0; var.elem_count()]
                } else {
                    Vec::new()
                },
                v_host: if fused {
                    vec![0.0; var.elem_count()]
                } else {
                    Vec::new()
                },
                m: None,
                v: None,
            })
            .collect();
        Self {
            spec: spec.clone(),
            slots,
            step: 0,
            fused,
        }
    }

    /// The settings in force.
    pub fn spec(&self) -> &OptimizerSpec {
        &self.spec
    }

    /// New settings of the same kind (scheduled changes); the moment estimates
    /// carry over.
    pub fn set_spec(&mut self, spec: OptimizerSpec) {
        self.spec = spec;
    }

    /// Updates applied so far.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// The moments as tensors named `m.<slot>` / `v.<slot>` (slot = position in the
    /// parameter list), flat; slots without a moment yet are left out.
    pub(crate) fn export(&self) -> Result<HashMap<String, Tensor>> {
        let mut out = HashMap::new();
        for (i, slot) in self.slots.iter().enumerate() {
            if self.fused {
                let dev = slot.var.device();
                if self.uses_m() {
                    out.insert(
                        format!("m.{i}"),
                        Tensor::from_slice(&slot.m_host, slot.m_host.len(), dev)?,
                    );
                }
                if self.uses_v() {
                    out.insert(
                        format!("v.{i}"),
                        Tensor::from_slice(&slot.v_host, slot.v_host.len(), dev)?,
                    );
                }
            } else {
                for (key, t) in [("m", &slot.m), ("v", &slot.v)] {
                    if let Some(t) = t {
                        out.insert(format!("{key}.{i}"), t.flatten_all()?);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Restores what [`Optimizer::export`] wrote and the number of updates done;
    /// fails when a tensor's size does not match its parameter.
    pub(crate) fn import(&mut self, tensors: &HashMap<String, Tensor>, steps: u64) -> Result<()> {
        self.step = steps;
        for (i, slot) in self.slots.iter_mut().enumerate() {
            for key in ["m", "v"] {
                let Some(t) = tensors.get(&format!("{key}.{i}")) else {
                    continue;
                };
                if t.elem_count() != slot.var.elem_count() {
                    candle_core::bail!(
                        "optimizer state {key}.{i} has {} values, the parameter has {}",
                        t.elem_count(),
                        slot.var.elem_count()
                    );
                }
                let t = t.to_dtype(slot.var.dtype())?.to_device(slot.var.device())?;
                if self.fused {
                    let host = if key == "m" {
                        &mut slot.m_host
                    } else {
                        &mut slot.v_host
                    };
                    *host = t.to_vec1::<f32>()?;
                } else {
                    let t = Some(t.reshape(slot.var.shape())?);
                    if key == "m" { slot.m = t } else { slot.v = t }
                }
            }
        }
        Ok(())
    }

    /// Whether the rule keeps a first moment / momentum buffer.
    fn uses_m(&self) -> bool {
        match &self.spec {
            OptimizerSpec::Sgd { momentum, .. } => *momentum != 0.0,
            _ => true,
        }
    }

    /// Whether the rule keeps a second moment.
    fn uses_v(&self) -> bool {
        !matches!(self.spec, OptimizerSpec::Sgd { .. })
    }

    /// Whether the fused CPU kernel is in use.
    pub fn is_fused(&self) -> bool {
        self.fused
    }

    /// Applies one update with learning rate `lr`, multiplying every gradient by
    /// `grad_scale` first (1.0 unless clipping).
    pub fn step(&mut self, grads: &GradStore, lr: f64, grad_scale: &GradScale) -> Result<()> {
        self.step += 1;
        // The fused kernel runs on the CPU, where reading the factor is free; the
        // reference path multiplies by a device factor without reading it.
        let (host_scale, device_scale) = match grad_scale {
            GradScale::Device(t) if !self.fused => (1.0, Some(t)),
            other => (other.host()?, None),
        };
        let rule = Rule::new(&self.spec, lr, host_scale, self.step);
        for slot in &mut self.slots {
            let Some(grad) = grads.get(slot.var.as_tensor()) else {
                continue;
            };
            if self.fused {
                let grad = grad.contiguous()?;
                let op = FusedUpdate {
                    rule: &rule,
                    m: RefCell::new(&mut slot.m_host),
                    v: RefCell::new(&mut slot.v_host),
                };
                slot.var.as_tensor().inplace_op2(&grad, &op)?;
            } else {
                match device_scale {
                    Some(s) => reference_update(&rule, slot, &grad.broadcast_mul(s)?)?,
                    None => reference_update(&rule, slot, grad)?,
                }
            }
        }
        Ok(())
    }
}

/// The scalar constants of one update.
#[derive(Debug, Clone, Copy)]
struct Rule {
    kind: Kind,
    lr: f64,
    scale: f64,
    weight_decay: f64,
    decoupled: bool,
    b1: f64,
    b2: f64,
    eps: f64,
    /// 1 - b1^t and 1 - b2^t.
    bc1: f64,
    bc2: f64,
    momentum: f64,
    nesterov: bool,
    first_step: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Sgd,
    Adam,
}

impl Rule {
    fn new(spec: &OptimizerSpec, lr: f64, scale: f64, t: u64) -> Self {
        let t = t.min(i32::MAX as u64) as i32;
        let base = Self {
            kind: Kind::Sgd,
            lr,
            scale,
            weight_decay: 0.0,
            decoupled: false,
            b1: 0.0,
            b2: 0.0,
            eps: 0.0,
            bc1: 1.0,
            bc2: 1.0,
            momentum: 0.0,
            nesterov: false,
            first_step: t == 1,
        };
        match *spec {
            OptimizerSpec::Sgd {
                momentum,
                nesterov,
                weight_decay,
                ..
            } => Self {
                momentum,
                nesterov,
                weight_decay,
                ..base
            },
            OptimizerSpec::Adam {
                beta1,
                beta2,
                eps,
                weight_decay,
                ..
            }
            | OptimizerSpec::AdamW {
                beta1,
                beta2,
                eps,
                weight_decay,
                ..
            } => Self {
                kind: Kind::Adam,
                weight_decay,
                decoupled: matches!(spec, OptimizerSpec::AdamW { .. }),
                b1: beta1,
                b2: beta2,
                eps,
                bc1: 1.0 - beta1.powi(t),
                bc2: 1.0 - beta2.powi(t),
                ..base
            },
        }
    }
}

/// In-place update of one f32 CPU parameter from its gradient.
struct FusedUpdate<'a> {
    rule: &'a Rule,
    m: RefCell<&'a mut Vec<f32>>,
    v: RefCell<&'a mut Vec<f32>>,
}

impl InplaceOp2 for FusedUpdate<'_> {
    fn name(&self) -> &'static str {
        "fused-optimizer-update"
    }

    fn cpu_fwd(
        &self,
        dst: &mut CpuStorage,
        dst_l: &Layout,
        grad: &CpuStorage,
        grad_l: &Layout,
    ) -> Result<()> {
        let (CpuStorage::F32(p), CpuStorage::F32(g)) = (dst, grad) else {
            candle_core::bail!("fused optimizer update needs f32 parameters");
        };
        let (Some((p0, p1)), Some((g0, g1))) =
            (dst_l.contiguous_offsets(), grad_l.contiguous_offsets())
        else {
            candle_core::bail!("fused optimizer update needs contiguous buffers");
        };
        let p = &mut p[p0..p1];
        let g = &g[g0..g1];
        let mut m = self.m.borrow_mut();
        let mut v = self.v.borrow_mut();
        if p.len() != g.len() || m.len() != p.len() || v.len() != p.len() {
            candle_core::bail!("fused optimizer update: buffer sizes differ");
        }
        update_split(self.rule, p, g, &mut m, &mut v);
        Ok(())
    }
}

/// Elements below which an update stays on the calling core: a parallel region
/// costs more than a pass over this little memory.
const SPLIT_MIN_LEN: usize = 1 << 15;

/// Runs the update over `p` in one piece per core when it is large (the rule is
/// elementwise, so the pieces give bit-identical results).
fn update_split(r: &Rule, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
    let cores = rayon::current_num_threads();
    if p.len() < SPLIT_MIN_LEN || cores < 2 {
        return update(r, p, g, m, v);
    }
    // Whole 64-byte lines per piece.
    let piece = p.len().div_ceil(cores).next_multiple_of(16);
    let pieces = p
        .chunks_mut(piece)
        .zip(g.chunks(piece))
        .zip(m.chunks_mut(piece))
        .zip(v.chunks_mut(piece));
    rayon::scope(|s| {
        for (((p, g), m), v) in pieces {
            s.spawn(move |_| update(r, p, g, m, v));
        }
    });
}

/// One pass of the rule over a piece of a parameter.
fn update(r: &Rule, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
    let (lr, scale, wd) = (r.lr as f32, r.scale as f32, r.weight_decay as f32);
    match r.kind {
        Kind::Adam => {
            let decay = if r.decoupled { 1.0 - lr * wd } else { 1.0 };
            let l2 = if r.decoupled { 0.0 } else { wd };
            let c = AdamConsts {
                scale,
                l2,
                b1: r.b1 as f32,
                b2: r.b2 as f32,
                eps: r.eps as f32,
                step: lr / r.bc1 as f32,
                inv_sqrt_bc2: 1.0 / (r.bc2 as f32).sqrt(),
                decay,
            };
            adam(&c, p, g, m, v);
        }
        Kind::Sgd => {
            let mom = r.momentum as f32;
            if mom == 0.0 {
                sgd_plain(lr, scale, wd, p, g);
            } else {
                let first = r.first_step;
                sgd_momentum(lr, scale, wd, mom, first, r.nesterov, p, g, m);
            }
        }
    }
}

/// Adam's per-step constants, in f32.
struct AdamConsts {
    scale: f32,
    /// L2 penalty added to the gradient (Adam); 0 for AdamW.
    l2: f32,
    b1: f32,
    b2: f32,
    eps: f32,
    /// lr / (1 - b1^t).
    step: f32,
    inv_sqrt_bc2: f32,
    /// 1 - lr * weight_decay for AdamW; 1 for Adam.
    decay: f32,
}

simd_kernel! {
    /// Adam / AdamW over zipped slices (no bounds checks, so the loop vectorises;
    /// no fused multiply-adds, so every level gives the same bits).
    fn adam(c: &AdamConsts, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
        for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            let gi = g * c.scale + c.l2 * *p;
            let mi = c.b1 * *m + (1.0 - c.b1) * gi;
            let vi = c.b2 * *v + (1.0 - c.b2) * gi * gi;
            *m = mi;
            *v = vi;
            *p = *p * c.decay - c.step * mi / (vi.sqrt() * c.inv_sqrt_bc2 + c.eps);
        }
    }
}

simd_kernel! {
    /// SGD without momentum.
    fn sgd_plain(lr: f32, scale: f32, wd: f32, p: &mut [f32], g: &[f32]) {
        for (p, &g) in p.iter_mut().zip(g) {
            *p -= lr * (g * scale + wd * *p);
        }
    }
}

simd_kernel! {
    /// SGD with a momentum buffer (PyTorch's rule: the first step's buffer is the
    /// gradient itself).
    fn sgd_momentum(
        lr: f32,
        scale: f32,
        wd: f32,
        mom: f32,
        first: bool,
        nesterov: bool,
        p: &mut [f32],
        g: &[f32],
        m: &mut [f32],
    ) {
        for ((p, &g), m) in p.iter_mut().zip(g).zip(m.iter_mut()) {
            let gi = g * scale + wd * *p;
            let buf = if first { gi } else { mom * *m + gi };
            *m = buf;
            *p -= lr * if nesterov { gi + mom * buf } else { buf };
        }
    }
}

/// The same update as `FusedUpdate`, written with candle tensor ops.
fn reference_update(r: &Rule, slot: &mut Slot, grad: &Tensor) -> Result<()> {
    let p = slot.var.as_tensor().detach();
    let mut g = grad.affine(r.scale, 0.0)?;
    let l2 = if r.kind == Kind::Adam && r.decoupled {
        0.0
    } else {
        r.weight_decay
    };
    if l2 != 0.0 {
        g = (g + p.affine(l2, 0.0)?)?;
    }
    let new_p = match r.kind {
        Kind::Adam => {
            let m_prev = slot.m.take().map_or_else(|| p.zeros_like(), Ok)?;
            let v_prev = slot.v.take().map_or_else(|| p.zeros_like(), Ok)?;
            let m = (m_prev.affine(r.b1, 0.0)? + g.affine(1.0 - r.b1, 0.0)?)?;
            let v = (v_prev.affine(r.b2, 0.0)? + g.sqr()?.affine(1.0 - r.b2, 0.0)?)?;
            let denom = (v.affine(1.0 / r.bc2, 0.0)?.sqrt()? + r.eps)?;
            let update = (m.affine(1.0 / r.bc1, 0.0)? / denom)?.affine(r.lr, 0.0)?;
            slot.m = Some(m);
            slot.v = Some(v);
            let decayed = if r.decoupled {
                p.affine(1.0 - r.lr * r.weight_decay, 0.0)?
            } else {
                p
            };
            (decayed - update)?
        }
        Kind::Sgd => {
            let step = if r.momentum != 0.0 {
                let buf = match slot.m.take() {
                    Some(prev) if !r.first_step => (prev.affine(r.momentum, 0.0)? + &g)?,
                    _ => g.clone(),
                };
                let step = if r.nesterov {
                    (&g + buf.affine(r.momentum, 0.0)?)?
                } else {
                    buf.clone()
                };
                slot.m = Some(buf);
                step
            } else {
                g
            };
            (p - step.affine(r.lr, 0.0)?)?
        }
    };
    slot.var.set(&new_p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Runs a few steps of a tiny least-squares problem with both kernels and
    /// returns the final parameters of each.
    fn both_kernels(spec: &OptimizerSpec) -> Result<(Vec<f32>, Vec<f32>)> {
        let mut out = Vec::new();
        for kernel in [Kernels::Fast, Kernels::Reference] {
            let w = Var::from_vec(vec![0.5f32, -1.0, 2.0, 0.1], 4, &Device::Cpu)?;
            let x = Tensor::new(&[1.0f32, 2.0, -1.0, 0.5], &Device::Cpu)?;
            let mut opt = Optimizer::new(spec, std::slice::from_ref(&w), kernel);
            assert_eq!(opt.is_fused(), kernel == Kernels::Fast);
            for _ in 0..5 {
                let loss = (w.as_tensor() * &x)?.sum_all()?.sqr()?;
                let grads = loss.backward()?;
                opt.step(&grads, 0.05, &GradScale::Host(0.9))?;
            }
            out.push(w.as_tensor().to_vec1::<f32>()?);
        }
        Ok((out[0].clone(), out[1].clone()))
    }

    fn assert_close(a: &[f32], b: &[f32], what: &str) {
        for (x, y) in a.iter().zip(b) {
            assert!(
                (x - y).abs() < 1e-5,
                "{what}: fused {a:?} vs reference {b:?}"
            );
        }
    }

    /// One spec of every rule: plain SGD, SGD with momentum and weight decay,
    /// Nesterov, Adam, Adam with an L2 penalty, AdamW.
    fn every_rule() -> [OptimizerSpec; 6] {
        [
            OptimizerSpec::Sgd {
                lr: 0.1,
                momentum: 0.0,
                nesterov: false,
                weight_decay: 0.0,
            },
            OptimizerSpec::Sgd {
                lr: 0.1,
                momentum: 0.9,
                nesterov: false,
                weight_decay: 0.01,
            },
            OptimizerSpec::Sgd {
                lr: 0.1,
                momentum: 0.9,
                nesterov: true,
                weight_decay: 0.0,
            },
            OptimizerSpec::Adam {
                lr: 0.1,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 0.0,
            },
            OptimizerSpec::Adam {
                lr: 0.1,
                beta1: 0.8,
                beta2: 0.99,
                eps: 1e-6,
                weight_decay: 0.1,
            },
            OptimizerSpec::AdamW {
                lr: 0.1,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 0.1,
            },
        ]
    }

    #[test]
    fn fused_matches_reference_for_every_rule() -> Result<()> {
        for spec in &every_rule() {
            let (fused, reference) = both_kernels(spec)?;
            assert_close(&fused, &reference, &format!("{spec:?}"));
        }
        Ok(())
    }

    #[test]
    fn adam_first_step_moves_each_weight_by_lr() -> Result<()> {
        // With bias correction, Adam's first step is lr * sign(grad) (for |g| >> eps).
        let w = Var::from_vec(vec![1.0f32, -1.0], 2, &Device::Cpu)?;
        let mut opt = Optimizer::new(
            &OptimizerSpec::default(),
            std::slice::from_ref(&w),
            Kernels::Fast,
        );
        let loss = (w.as_tensor() * Tensor::new(&[3.0f32, -0.5], &Device::Cpu)?)?.sum_all()?;
        opt.step(&loss.backward()?, 0.01, &GradScale::ONE)?;
        let got = w.as_tensor().to_vec1::<f32>()?;
        assert_close(&got, &[0.99, -0.99], "first Adam step");
        Ok(())
    }

    /// A parameter large enough to be split over the cores gets bit-identical
    /// values, moments and momentum to one pass over the whole of it, for every
    /// rule.
    #[test]
    fn split_update_equals_one_pass() {
        let len = SPLIT_MIN_LEN * 3 + 5;
        let wave = |k: f32| {
            (0..len)
                .map(move |i| ((i as f32) * k).sin())
                .collect::<Vec<_>>()
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .expect("pool");
        for spec in every_rule() {
            let rule = Rule::new(&spec, 0.01, 0.5, 3);
            let (mut p1, g, mut m1, v1) = (wave(0.1), wave(0.37), wave(0.01), wave(0.02));
            let mut v1 = v1.iter().map(|v| v.abs()).collect::<Vec<_>>();
            let (mut p2, mut m2, mut v2) = (p1.clone(), m1.clone(), v1.clone());
            update(&rule, &mut p1, &g, &mut m1, &mut v1);
            pool.install(|| update_split(&rule, &mut p2, &g, &mut m2, &mut v2));
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&p1), bits(&p2), "{spec:?}: parameters");
            assert_eq!(bits(&m1), bits(&m2), "{spec:?}: first moments");
            assert_eq!(bits(&v1), bits(&v2), "{spec:?}: second moments");
        }
    }
}
