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

    /// The parameters after each of `steps` updates of w = [1, 2] under the
    /// constant gradient [1, -3] (loss = sum(w * [1, -3])) times `scale`, at lr 0.1.
    fn steps_from(
        spec: &OptimizerSpec,
        kernel: Kernels,
        scale: &GradScale,
        steps: usize,
    ) -> Result<(Optimizer, Var, Vec<Vec<f32>>)> {
        let w = Var::from_vec(vec![1.0f32, 2.0], 2, &Device::Cpu)?;
        let mut opt = Optimizer::new(spec, std::slice::from_ref(&w), kernel);
        let mut after = Vec::new();
        for _ in 0..steps {
            constant_step(&mut opt, &w, scale)?;
            after.push(w.as_tensor().to_vec1::<f32>()?);
        }
        Ok((opt, w, after))
    }

    /// One update of `w` (two values) under the gradient [1, -3] times `scale`.
    fn constant_step(opt: &mut Optimizer, w: &Var, scale: &GradScale) -> Result<()> {
        let c = Tensor::new(&[1.0f32, -3.0], &Device::Cpu)?;
        let grads = (w.as_tensor() * c)?.sum_all()?.backward()?;
        opt.step(&grads, 0.1, scale)
    }

    fn assert_steps(got: &[Vec<f32>], want: &[[f64; 2]], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}");
        for (t, (g, w)) in got.iter().zip(want).enumerate() {
            for (x, y) in g.iter().zip(w) {
                assert!(
                    (f64::from(*x) - y).abs() < 2e-6,
                    "{what}, step {}: got {g:?}, want {w:?}",
                    t + 1
                );
            }
        }
    }

    fn moment(opt: &Optimizer, key: &str) -> Result<Vec<f32>> {
        opt.export()?[key].to_vec1::<f32>()
    }

    /// Adam with an L2 penalty (added to the gradient), lr 0.1, beta1 0.5,
    /// beta2 0.75, eps 0.5, weight decay 0.5, gradient scale 2. By hand, step 1 of
    /// w = 1: g = 2 * 1 + 0.5 * 1 = 2.5, m = 0.5 * 2.5 = 1.25, v = 0.25 * 2.5^2 =
    /// 1.5625; bias-corrected m = 1.25 / 0.5 = 2.5, v = 1.5625 / 0.25 = 6.25; w =
    /// 1 - 0.1 * 2.5 / (sqrt(6.25) + 0.5) = 1 - 0.25 / 3 = 0.9166667. Steps 2 and 3
    /// (bias corrections 1 - 0.5^t, 1 - 0.75^t) the same way, in f64.
    const ADAM_L2: [[f64; 2]; 3] = [
        [0.916_666_666_666_666_6, 2.090_909_090_909_091],
        [0.833_602_396_043_193_7, 2.181_695_119_638_925_4],
        [0.750_892_376_583_535_7, 2.272_312_160_342_193],
    ];

    fn adam_l2() -> OptimizerSpec {
        OptimizerSpec::Adam {
            lr: 0.1,
            beta1: 0.5,
            beta2: 0.75,
            eps: 0.5,
            weight_decay: 0.5,
        }
    }

    #[test]
    fn adam_with_an_l2_penalty_takes_the_hand_computed_steps() -> Result<()> {
        for kernel in [Kernels::Fast, Kernels::Reference] {
            let (opt, _, got) = steps_from(&adam_l2(), kernel, &GradScale::Host(2.0), 3)?;
            assert_steps(&got, &ADAM_L2, &format!("Adam + L2, {kernel:?}"));
            // The moments the three steps leave (without bias correction).
            assert_steps(
                &[moment(&opt, "m.0")?, moment(&opt, "v.0")?],
                &[
                    [2.135_483_932_344_132, -4.318_212_583_726_632],
                    [3.472_276_278_522_99, 14.143_229_544_199_574],
                ],
                &format!("Adam moments, {kernel:?}"),
            );
            assert_eq!(opt.steps(), 3);
        }
        Ok(())
    }

    /// AdamW: the decay multiplies the weight by 1 - lr * wd = 0.95 and stays out
    /// of the moments. Step 1 of w = 1: g = 2, bias-corrected m = 2, v = 4, w =
    /// 0.95 - 0.1 * 2 / (2 + 0.5) = 0.87; of w = 2: g = -6, w = 1.9 + 0.1 * 6 /
    /// 6.5 = 1.9923077.
    #[test]
    fn adamw_decays_the_weights_apart_from_the_gradient() -> Result<()> {
        let spec = OptimizerSpec::AdamW {
            lr: 0.1,
            beta1: 0.5,
            beta2: 0.75,
            eps: 0.5,
            weight_decay: 0.5,
        };
        for kernel in [Kernels::Fast, Kernels::Reference] {
            let (opt, _, got) = steps_from(&spec, kernel, &GradScale::Host(2.0), 3)?;
            assert_steps(
                &got,
                &[
                    [0.87, 1.992_307_692_307_692_3],
                    [0.7465, 1.985],
                    [0.629_175, 1.978_057_692_307_692_5],
                ],
                &format!("AdamW, {kernel:?}"),
            );
            // The gradient is constant and the decay is not in it: m and v are
            // 2 and 4 (and -6, 36) times 1 - 0.5^3 and 1 - 0.75^3.
            assert_steps(
                &[moment(&opt, "m.0")?, moment(&opt, "v.0")?],
                &[[1.75, -5.25], [2.3125, 20.8125]],
                &format!("AdamW moments, {kernel:?}"),
            );
        }
        Ok(())
    }

    /// SGD at lr 0.1 with weight decay 0.25 and gradient scale 2: plain, with
    /// momentum 0.5, and Nesterov. By hand for w = 1: g1 = 2 + 0.25 = 2.25, so
    /// every rule but Nesterov goes to 1 - 0.225 = 0.775 (the first momentum
    /// buffer is the gradient itself) and Nesterov to 1 - 0.1 * (2.25 + 0.5 *
    /// 2.25) = 0.6625. Step 2 with momentum: g2 = 2 + 0.25 * 0.775 = 2.19375,
    /// buffer 0.5 * 2.25 + 2.19375 = 3.31875, w = 0.775 - 0.331875 = 0.443125.
    #[test]
    fn sgd_plain_momentum_and_nesterov_take_the_hand_computed_steps() -> Result<()> {
        let sgd = |momentum, nesterov| OptimizerSpec::Sgd {
            lr: 0.1,
            momentum,
            nesterov,
            weight_decay: 0.25,
        };
        let cases = [
            (
                sgd(0.0, false),
                [
                    [0.775, 2.55],
                    [0.555_625, 3.086_25],
                    [0.341_734_375, 3.609_093_75],
                ],
            ),
            (
                sgd(0.5, false),
                [
                    [0.775, 2.55],
                    [0.443_125, 3.361_25],
                    [0.066_109_375, 4.282_843_75],
                ],
            ),
            (
                sgd(0.5, true),
                [
                    [0.6625, 2.825],
                    [0.281_406_25, 3.756_562_5],
                    [-0.111_412_109_375, 4.716_785_156_25],
                ],
            ),
        ];
        for (spec, want) in &cases {
            for kernel in [Kernels::Fast, Kernels::Reference] {
                let (_, _, got) = steps_from(spec, kernel, &GradScale::Host(2.0), 3)?;
                assert_steps(&got, want, &format!("{spec:?}, {kernel:?}"));
            }
        }
        Ok(())
    }

    /// A factor left on the device (clipping on a GPU) scales the gradient on
    /// either kernel exactly as the same factor on the host does.
    #[test]
    fn a_device_gradient_scale_is_applied_by_both_kernels() -> Result<()> {
        let two = GradScale::Device(Tensor::new(2.0f32, &Device::Cpu)?);
        for kernel in [Kernels::Fast, Kernels::Reference] {
            let (_, _, got) = steps_from(&adam_l2(), kernel, &two, 3)?;
            assert_steps(&got, &ADAM_L2, &format!("device scale, {kernel:?}"));
        }
        Ok(())
    }

    /// `export` holds exactly the moments the rule keeps (none for plain SGD, the
    /// momentum buffer for SGD with momentum, both for Adam), `import` restores
    /// them and the step count, and the next update is then bit for bit the one
    /// the uninterrupted optimizer makes.
    #[test]
    fn export_holds_the_rules_moments_and_import_continues_exactly() -> Result<()> {
        let mut specs = every_rule().to_vec();
        specs.push(adam_l2());
        for spec in &specs {
            let want: &[&str] = match spec {
                OptimizerSpec::Sgd { momentum, .. } if *momentum == 0.0 => &[],
                OptimizerSpec::Sgd { .. } => &["m.0"],
                _ => &["m.0", "v.0"],
            };
            for kernel in [Kernels::Fast, Kernels::Reference] {
                let what = format!("{spec:?}, {kernel:?}");
                let (mut a, wa, _) = steps_from(spec, kernel, &GradScale::Host(2.0), 2)?;
                assert_eq!(a.steps(), 2, "{what}");
                let saved = a.export()?;
                let mut keys: Vec<_> = saved.keys().map(String::as_str).collect();
                keys.sort_unstable();
                assert_eq!(keys, want, "{what}: exported moments");

                let wb = Var::from_vec(wa.as_tensor().to_vec1::<f32>()?, 2, &Device::Cpu)?;
                let mut b = Optimizer::new(spec, std::slice::from_ref(&wb), kernel);
                b.import(&saved, 2)?;
                assert_eq!(b.steps(), 2, "{what}: restored step count");
                constant_step(&mut a, &wa, &GradScale::Host(2.0))?;
                constant_step(&mut b, &wb, &GradScale::Host(2.0))?;
                let bits = |w: &Var| -> Result<Vec<u32>> {
                    Ok(w.as_tensor()
                        .to_vec1::<f32>()?
                        .iter()
                        .map(|x| x.to_bits())
                        .collect())
                };
                assert_eq!(bits(&wa)?, bits(&wb)?, "{what}: step after import");
                assert_eq!(a.steps(), 3, "{what}");
                assert_eq!(b.steps(), 3, "{what}");

                let mut c = Optimizer::new(spec, std::slice::from_ref(&wb), kernel);
                let short = HashMap::from([(
                    "m.0".to_string(),
                    Tensor::new(&[1.0f32, 2.0, 3.0], &Device::Cpu)?,
                )]);
                let err = c.import(&short, 2).expect_err("3 values for 2 weights");
                assert!(
                    err.to_string().contains("m.0 has 3 values"),
                    "{what}: {err}"
                );
            }
        }
        Ok(())
    }

    /// PyTorch's rule: the first momentum step uses the gradient as the buffer,
    /// whatever the buffer held (here one imported with no steps done).
    #[test]
    fn the_first_momentum_step_is_the_gradient_whatever_the_buffer_holds() -> Result<()> {
        let spec = OptimizerSpec::Sgd {
            lr: 0.1,
            momentum: 0.5,
            nesterov: false,
            weight_decay: 0.25,
        };
        for kernel in [Kernels::Fast, Kernels::Reference] {
            let w = Var::from_vec(vec![1.0f32, 2.0], 2, &Device::Cpu)?;
            let mut opt = Optimizer::new(&spec, std::slice::from_ref(&w), kernel);
            let full = HashMap::from([(
                "m.0".to_string(),
                Tensor::new(&[5.0f32, 5.0], &Device::Cpu)?,
            )]);
            opt.import(&full, 0)?;
            constant_step(&mut opt, &w, &GradScale::Host(2.0))?;
            assert_steps(
                &[w.as_tensor().to_vec1::<f32>()?],
                &[[0.775, 2.55]],
                &format!("{kernel:?}"),
            );
        }
        Ok(())
    }

    /// `spec` is the one given, and `set_spec` changes the rule of later steps
    /// (here: weight decay switched on after a plain step).
    #[test]
    fn set_spec_changes_the_rule_of_the_next_step() -> Result<()> {
        let plain = OptimizerSpec::Sgd {
            lr: 0.1,
            momentum: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        };
        let decayed = OptimizerSpec::Sgd {
            lr: 0.1,
            momentum: 0.0,
            nesterov: false,
            weight_decay: 0.25,
        };
        for kernel in [Kernels::Fast, Kernels::Reference] {
            let (mut opt, w, got) = steps_from(&plain, kernel, &GradScale::Host(2.0), 1)?;
            assert_eq!(opt.spec(), &plain);
            // 1 - 0.1 * 2 = 0.8, 2 + 0.1 * 6 = 2.6.
            assert_steps(&got, &[[0.8, 2.6]], "plain");
            opt.set_spec(decayed.clone());
            assert_eq!(opt.spec(), &decayed);
            constant_step(&mut opt, &w, &GradScale::Host(2.0))?;
            // 0.8 - 0.1 * (2 + 0.25 * 0.8) = 0.58, 2.6 - 0.1 * (-6 + 0.25 * 2.6) = 3.135.
            assert_steps(
                &[w.as_tensor().to_vec1::<f32>()?],
                &[[0.58, 3.135]],
                &format!("after set_spec, {kernel:?}"),
            );
        }
        Ok(())
    }

    /// The fused kernel refuses moment buffers of another length than the
    /// parameter (and leaves the parameter as it was) instead of updating the
    /// shorter prefix.
    #[test]
    fn the_fused_update_refuses_moment_buffers_of_another_size() -> Result<()> {
        let rule = Rule::new(&adam_l2(), 0.1, 1.0, 1);
        let w = Var::from_vec(vec![1.0f32, 2.0], 2, &Device::Cpu)?;
        let g = Tensor::new(&[1.0f32, -3.0], &Device::Cpu)?;
        for (m_len, v_len) in [(1, 2), (2, 1), (3, 2), (2, 3)] {
            let (mut m, mut v) = (vec![0.0f32; m_len], vec![0.0f32; v_len]);
            let op = FusedUpdate {
                rule: &rule,
                m: RefCell::new(&mut m),
                v: RefCell::new(&mut v),
            };
            let err = w
                .as_tensor()
                .inplace_op2(&g, &op)
                .expect_err("buffers of another size");
            assert!(err.to_string().contains("buffer sizes differ"), "{err}");
            assert_eq!(w.as_tensor().to_vec1::<f32>()?, [1.0, 2.0]);
        }
        Ok(())
    }

    /// An empty parameter is left as it is, even where a pool has several cores
    /// (splitting zero values into pieces would ask for pieces of size zero).
    #[test]
    fn an_empty_parameter_updates_on_many_cores() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .expect("pool");
        for spec in every_rule() {
            let rule = Rule::new(&spec, 0.01, 1.0, 1);
            let mut nothing: [f32; 0] = [];
            let (mut m, mut v) = (nothing, nothing);
            pool.install(|| update_split(&rule, &mut nothing, &[], &mut m, &mut v));
        }
    }
}
