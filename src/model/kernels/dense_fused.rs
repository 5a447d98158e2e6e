//! A run of Linear layers with ReLU, Tanh or Sigmoid between them (an MLP, a
//! CNN's classifier head) on the CPU as one candle op with its own backward.
//! As separate ops, every activation is a tensor of its own with an
//! allocation, a dispatch and, in candle's autograd, a zero-filled gradient
//! plus an add; here the layers' outputs are pool buffers and the activation
//! and its gradient are applied in place. The products split across cores
//! inside the GEMM (by output columns, so no core repacks another's weights and
//! no partial gradients need adding up; measured faster than giving each core
//! its own rows, which packed the CNN's 4.7 MB first weight once per core).
//!
//! Contract: f32, CPU, contiguous `x [..., k]` (every leading dimension is one
//! more row); values and gradients equal the separate fused Linear ops and
//! candle's activations within float rounding (tested below against candle's
//! ops). The outputs of every layer stay inside the op from its forward pass to
//! its backward pass (one backward per forward).
//!
//! The first weight's gradient (`[128, 9216]`, 4.7 MB, in the MNIST CNN) would
//! reach candle's gradient store as every gradient does: a zero-filled tensor
//! of its size, then a sum of that and the gradient, written to a third. Under
//! [`backward`] (what the training loop calls) a stack whose first weight is a
//! variable hands that gradient over instead, and it goes into the store as is
//! (added to any other gradient the variable got). A plain `Tensor::backward`
//! gets the same values the ordinary way.
//!
//! A Flatten and a Dropout right before the first layer (a CNN's head) can be
//! absorbed too ([`Input`]): the op then reads `[b, ...]` as `b` rows, and
//! applies the dropout mask to its input going forward (kept for the first
//! weight's gradient) and to the input's gradient going back. Neither the
//! dropped-out nor the flattened activation becomes a tensor of the graph, so
//! candle makes no zero-filled gradient and no sum for either; the values and
//! the mask (the same draw from the run's RNG) are those of the separate
//! Dropout and Flatten layers, bit for bit.

use std::cell::RefCell;
use std::sync::Mutex;

use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};

use super::activation::simd_kernel;
use super::cpu_data::{f32_slice, with_data};
use super::fused::{linear_grads, linear_into};
use super::scratch::Scratch;
use crate::model::dropout::Mask;

/// The activation after one Linear layer of the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Act {
    Identity,
    Relu,
    Tanh,
    Sigmoid,
}

/// What happens to the stack's input before its first layer: the layers a
/// model has right before it that the op absorbs.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Input {
    /// `Flatten`: `[b, ...]` is `b` rows of every dimension after the first
    /// (else every leading dimension is one more row of the last).
    pub flatten: bool,
    /// `Dropout` while training: the mask applied to the input.
    pub mask: Option<Mask>,
}

/// `x` after `input`'s Flatten and Dropout, through Linear layers
/// `(weight [out, in], bias [out], activation)`, as one op. The first layer's
/// weight is its own input of the op (it is by far the largest in these
/// models, and joining it to the rest would copy it every step); the other
/// parameters travel as one flat vector: the first bias, then each later
/// layer's weight and bias.
pub(crate) fn dense_stack_from(
    x: &Tensor,
    input: Input,
    layers: &[(&Tensor, &Tensor, Act)],
) -> Result<Tensor> {
    let Some(((w0, b0, _), rest)) = layers.split_first() else {
        candle_core::bail!("dense stack: no layers");
    };
    let k = match (input.flatten, x.dims().split_first()) {
        (true, Some((_, tail))) if !tail.is_empty() => tail.iter().product(),
        (true, _) => candle_core::bail!("dense stack: cannot flatten {:?}", x.dims()),
        (false, _) => x.dim(candle_core::D::Minus1)?,
    };
    let mut widths = vec![k];
    for (w, b, _) in layers {
        let (out, input) = w.dims2()?;
        if input != widths[widths.len() - 1] || b.elem_count() != out {
            candle_core::bail!(
                "dense stack: weight {:?} and bias {:?} do not follow width {}",
                w.dims(),
                b.dims(),
                widths[widths.len() - 1]
            );
        }
        widths.push(out);
    }
    let mut tail = vec![b0.flatten_all()?];
    for (w, b, _) in rest {
        tail.push(w.flatten_all()?);
        tail.push(b.flatten_all()?);
    }
    let tail = Tensor::cat(&tail, 0)?;
    let op = StackOp {
        widths,
        acts: layers.iter().map(|l| l.2).collect(),
        input,
        saved: Mutex::new(None),
    };
    x.contiguous()?.apply_op3(&w0.contiguous()?, &tail, op)
}

struct StackOp {
    /// Input width, then each layer's output width.
    widths: Vec<usize>,
    acts: Vec<Act>,
    input: Input,
    /// What the last forward pass leaves for the backward pass.
    saved: Mutex<Option<Saved>>,
}

/// Every layer's output (after its activation), and the input with the
/// dropout mask applied when there is one.
struct Saved {
    outputs: Vec<Scratch>,
    masked: Option<Vec<f32>>,
}

/// One layer's parameters as slices.
struct LayerParams<'a> {
    w: &'a [f32],
    b: &'a [f32],
}

impl StackOp {
    fn tail_len(&self) -> usize {
        let w = &self.widths;
        w[1] + (2..w.len()).map(|i| w[i] * w[i - 1] + w[i]).sum::<usize>()
    }

    /// The layers' parameters from the first weight and the flat tail.
    fn params<'a>(&self, w0: &'a [f32], mut tail: &'a [f32]) -> Vec<LayerParams<'a>> {
        let mut take = |len: usize| {
            let (head, rest) = tail.split_at(len.min(tail.len()));
            tail = rest;
            head
        };
        let w = &self.widths;
        let mut out = vec![LayerParams {
            w: w0,
            b: take(w[1]),
        }];
        for i in 2..w.len() {
            let weight = take(w[i] * w[i - 1]);
            out.push(LayerParams {
                w: weight,
                b: take(w[i]),
            });
        }
        out
    }

    /// The forward pass: every layer's output, the last one also into `out`.
    fn forward_pass(&self, p: &[LayerParams], x: &[f32], out: &mut [f32]) -> Vec<Scratch> {
        let rows = x.len() / self.widths[0].max(1);
        let mut saved: Vec<Scratch> = Vec::with_capacity(p.len());
        for (i, (layer, &act)) in p.iter().zip(&self.acts).enumerate() {
            let mut y = Scratch::uninit(rows * self.widths[i + 1]);
            let input = if i == 0 { x } else { &saved[i - 1] };
            linear_into(input, layer.w, layer.b, &mut y);
            activate(act, &mut y);
            saved.push(y);
        }
        if let Some(last) = saved.last() {
            out.copy_from_slice(last);
        }
        saved
    }

    /// The backward pass: `dx` into `dx` when given; the first weight's
    /// gradient and the tail's returned.
    fn backward_pass(
        &self,
        p: &[LayerParams],
        (x, g): (&[f32], &[f32]),
        saved: &[Scratch],
        dx: Option<&mut [f32]>,
    ) -> (Vec<f32>, Vec<f32>) {
        let rows = x.len() / self.widths[0].max(1);
        let layers = p.len();
        let mut grads: Vec<(Vec<f32>, Vec<f32>)> = Vec::with_capacity(layers);
        let mut dy = Scratch::uninit(g.len());
        dy.copy_from_slice(g);
        let mut dx = dx;
        for i in (0..layers).rev() {
            activation_grad(self.acts[i], &saved[i], &mut dy);
            let (n, k) = (self.widths[i + 1], self.widths[i]);
            let input = if i == 0 { x } else { &saved[i - 1] };
            if i == 0 {
                grads.push(linear_grads(input, p[i].w, &dy, (n, k), dx.take()));
            } else {
                let mut below = Scratch::uninit(rows * k);
                grads.push(linear_grads(input, p[i].w, &dy, (n, k), Some(&mut below)));
                dy = below;
            }
        }
        grads.reverse();
        let mut grads = grads.into_iter();
        let (dw0, db0) = grads.next().unwrap_or_default();
        let mut tail = Vec::with_capacity(self.tail_len());
        tail.extend_from_slice(&db0);
        for (dw, db) in grads {
            tail.extend_from_slice(&dw);
            tail.extend_from_slice(&db);
        }
        (dw0, tail)
    }
}

simd_kernel! {
    /// `y = act(y)` in place; NaN stays NaN (a diverging run must not look healthy).
    fn activate(act: Act, y: &mut [f32]) {
        match act {
            Act::Identity => {}
            Act::Relu => y
                .iter_mut()
                .for_each(|v| *v = if *v < 0.0 { 0.0 } else { *v }),
            // The standard library's functions, as candle's ops. With the fast
            // approximations (relative precision lost near 0) the spiral
            // example of tests/points_runs.rs ended at 89 % instead of 100 %.
            Act::Tanh => y.iter_mut().for_each(|v| *v = v.tanh()),
            Act::Sigmoid => y.iter_mut().for_each(|v| *v = 1.0 / (1.0 + (-*v).exp())),
        }
    }
}

simd_kernel! {
    /// `dy *= act'(x)`, written from the activation's output `y = act(x)`.
    fn activation_grad(act: Act, y: &[f32], dy: &mut [f32]) {
        match act {
            Act::Identity => {}
            Act::Relu => dy
                .iter_mut()
                .zip(y)
                .for_each(|(d, &y)| *d = if y > 0.0 { *d } else { 0.0 }),
            Act::Tanh => dy.iter_mut().zip(y).for_each(|(d, &y)| *d *= 1.0 - y * y),
            Act::Sigmoid => dy.iter_mut().zip(y).for_each(|(d, &y)| *d *= y * (1.0 - y)),
        }
    }
}

impl CustomOp3 for StackOp {
    fn name(&self) -> &'static str {
        "dense-stack"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let op = "dense-stack";
        let x = f32_slice(s1, l1, op)?;
        let w0 = f32_slice(s2, l2, op)?;
        let tail = f32_slice(s3, l3, op)?;
        let (k, out_width) = (self.widths[0], self.widths[self.widths.len() - 1]);
        let width = match self.input.flatten {
            true => l1.dims().iter().skip(1).product(),
            false => l1.dims().last().copied().unwrap_or(0),
        };
        if width != k || w0.len() != k * self.widths[1] || tail.len() != self.tail_len() {
            candle_core::bail!("{op}: input {:?} does not fit the layers", l1.dims());
        }
        let p = self.params(w0, tail);
        let rows = x.len() / k.max(1);
        let mut out = vec![0f32; rows * out_width];
        let masked = self.input.mask.map(|m| m.applied(x));
        let outputs = self.forward_pass(&p, masked.as_deref().unwrap_or(x), &mut out);
        if let Ok(mut slot) = self.saved.lock() {
            *slot = Some(Saved { outputs, masked });
        }
        let mut dims = l1.dims().to_vec();
        if self.input.flatten {
            dims.truncate(1);
            dims.push(out_width);
        } else if let Some(last) = dims.last_mut() {
            *last = out_width;
        }
        Ok((CpuStorage::F32(out), Shape::from(dims)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w0: &Tensor,
        tail: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let op = "dense-stack backward";
        let Some(saved) = self.saved.lock().ok().and_then(|mut s| s.take()) else {
            candle_core::bail!("{op}: called twice or without a forward pass");
        };
        let Saved { outputs, masked } = saved;
        let mut dx = vec![0f32; if x.track_op() { x.elem_count() } else { 0 }];
        let (dw0, dtail) = with_data(x, op, |xd| {
            with_data(w0, op, |w0d| {
                with_data(tail, op, |taild| {
                    with_data(grad, op, |g| {
                        let last = outputs.last().map_or(0, |o| o.len());
                        if outputs.len() != self.acts.len() || g.len() != last {
                            candle_core::bail!("{op}: the input changed since the forward pass");
                        }
                        let p = self.params(w0d, taild);
                        let dx = x.track_op().then_some(&mut dx[..]);
                        let xd = masked.as_deref().unwrap_or(xd);
                        Ok(self.backward_pass(&p, (xd, g), &outputs, dx))
                    })
                })
            })
        })?;
        if let Some(mask) = self.input.mask {
            mask.apply_in_place(&mut dx);
        }
        let device = x.device();
        let dw0 = Tensor::from_vec(dw0, w0.shape(), device)?;
        Ok((
            x.track_op()
                .then(|| Tensor::from_vec(dx, x.shape(), device))
                .transpose()?,
            hand_over(w0, dw0),
            Some(Tensor::from_vec(dtail, tail.shape(), device)?),
        ))
    }
}

thread_local! {
    /// While [`backward`] runs on this thread: the variables whose gradients
    /// the stacks handed over, with those gradients.
    static HANDED: RefCell<Option<Vec<(Tensor, Tensor)>>> = const { RefCell::new(None) };
}

/// `grad` of `w` for candle to add up (Some), or None when it was handed to the
/// [`backward`] running on this thread (only a variable's: its gradient is not
/// needed further down the graph).
fn hand_over(w: &Tensor, grad: Tensor) -> Option<Tensor> {
    if !w.is_variable() {
        return Some(grad);
    }
    HANDED.with(|h| match h.borrow_mut().as_mut() {
        Some(handed) => {
            handed.push((w.clone(), grad));
            None
        }
        None => Some(grad),
    })
}

/// `loss.backward()`, with the gradients of the dense stacks' first weights put
/// into the store as computed rather than added to a zero-filled tensor (see the
/// module's comment). The same gradients as `loss.backward()`.
pub(crate) fn backward(loss: &Tensor) -> Result<GradStore> {
    /// Ends the hand-over even when the backward pass fails.
    struct Ending;
    impl Drop for Ending {
        fn drop(&mut self) {
            HANDED.with(|h| h.borrow_mut().take());
        }
    }
    HANDED.with(|h| *h.borrow_mut() = Some(Vec::new()));
    let ending = Ending;
    let grads = loss.backward();
    let handed = HANDED.with(|h| h.borrow_mut().take()).unwrap_or_default();
    drop(ending);
    let mut grads = grads?;
    for (w, g) in handed {
        let sum = match grads.get(&w) {
            Some(other) => other.add(&g)?,
            None => g,
        };
        grads.insert(&w, sum);
    }
    Ok(grads)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_tensors::max_diff;
    use candle_core::{Device, Var};

    fn dense_stack(x: &Tensor, layers: &[(&Tensor, &Tensor, Act)]) -> Result<Tensor> {
        dense_stack_from(x, Input::default(), layers)
    }

    fn var(dims: &[usize]) -> Var {
        Var::from_tensor(&Tensor::randn(0f32, 1., dims, &Device::Cpu).expect("randn")).expect("var")
    }

    /// The stack against candle's matmul, broadcast add and activations, values
    /// and every gradient, for each activation, on rows, a single row and a
    /// `[b, t, k]` sequence (the other SIMD levels: tests/simd_paths.rs).
    #[test]
    fn stack_and_its_gradients_match_candle() {
        let cases: [(&[usize], &[usize]); 4] = [
            (&[1, 7], &[5, 3]),
            (&[64, 30], &[16, 16, 4]),
            (&[37, 9], &[8, 2]),
            (&[3, 12, 6], &[5, 5]),
        ];
        let acts = [Act::Relu, Act::Tanh, Act::Sigmoid, Act::Identity];
        for (dims, outs) in cases {
            for first in acts {
                check(dims, outs, first);
            }
        }
    }

    fn check(dims: &[usize], outs: &[usize], first: Act) {
        let case = format!("{dims:?} -> {outs:?}, {first:?} first");
        let x = var(dims);
        let mut input = dims[dims.len() - 1];
        let mut params = Vec::new();
        for (i, &out) in outs.iter().enumerate() {
            // The last layer has no activation, as an MLP's output layer.
            let act = match i {
                0 => first,
                _ if i + 1 == outs.len() => Act::Identity,
                _ => Act::Relu,
            };
            params.push((var(&[out, input]), var(&[out]), act));
            input = out;
        }
        let refs: Vec<(&Tensor, &Tensor, Act)> = params
            .iter()
            .map(|(w, b, a)| (w.as_tensor(), b.as_tensor(), *a))
            .collect();
        let fused = dense_stack(&x, &refs).expect("fused");
        let mut reference = x.as_tensor().clone();
        for (w, b, act) in &params {
            let y = reference
                .broadcast_matmul(&w.t().expect("t"))
                .and_then(|y| y.broadcast_add(b))
                .expect("linear");
            reference = match act {
                Act::Identity => y,
                Act::Relu => y.relu().expect("relu"),
                Act::Tanh => y.tanh().expect("tanh"),
                Act::Sigmoid => candle_nn::ops::sigmoid(&y).expect("sigmoid"),
            };
        }
        assert_eq!(fused.dims(), reference.dims(), "{case}");
        assert!(
            max_diff(&fused, &reference).expect("diff") < 1e-4,
            "forward {case}"
        );
        let up = Tensor::randn(0f32, 1., fused.dims(), &Device::Cpu).expect("up");
        // The training loop's `backward`: the first weight's gradient handed over.
        let gf = (fused * &up)
            .and_then(|t| t.sum_all())
            .and_then(|t| backward(&t))
            .expect("bwd");
        let gr = (reference * &up)
            .and_then(|t| t.sum_all())
            .and_then(|t| t.backward())
            .expect("bwd");
        let mut vars = vec![&x];
        for (w, b, _) in &params {
            vars.push(w);
            vars.push(b);
        }
        for (i, v) in vars.into_iter().enumerate() {
            let (a, r) = (gf.get(v).expect("grad"), gr.get(v).expect("grad"));
            assert_eq!(a.dims(), r.dims(), "gradient {i} {case}");
            assert!(max_diff(a, r).expect("diff") < 1e-4, "gradient {i} {case}");
        }
    }

    /// A first weight that the graph also uses elsewhere: the handed-over
    /// gradient is added to the other one, under [`backward`] as under candle's
    /// own; the same stack run on a plain tensor weight (not a variable) keeps
    /// candle's path. Nothing is left handed over after either.
    #[test]
    fn handed_over_gradient_adds_to_other_uses() {
        let x = var(&[5, 6]);
        let (w0, b0) = (var(&[4, 6]), var(&[4]));
        let (w1, b1) = (var(&[3, 4]), var(&[3]));
        let loss = |w: &Tensor| -> Result<Tensor> {
            let layers = [
                (w, b0.as_tensor(), Act::Relu),
                (w1.as_tensor(), b1.as_tensor(), Act::Identity),
            ];
            let y = dense_stack(x.as_tensor(), &layers)?.sum_all()?;
            y + (w.sqr()?.sum_all()? * 0.5)?
        };
        let ours = loss(w0.as_tensor())
            .and_then(|l| backward(&l))
            .expect("ours");
        let theirs = loss(w0.as_tensor())
            .and_then(|l| l.backward())
            .expect("candle");
        let (a, b) = (ours.get(&w0).expect("grad"), theirs.get(&w0).expect("grad"));
        assert!(max_diff(a, b).expect("diff") < 1e-5, "w0 used twice");
        assert!(HANDED.with(|h| h.borrow().is_none()), "hand-over ended");
        // Not a variable: candle's path (the weight is a computed tensor).
        let scaled = (w0.as_tensor() * 1.0).expect("scaled");
        let g = loss(&scaled)
            .and_then(|l| backward(&l))
            .expect("computed weight");
        let want = theirs.get(&w0).expect("grad");
        assert!(max_diff(g.get(&w0).expect("grad"), want).expect("diff") < 1e-5);
    }

    /// Bitwise equality of two tensors' values.
    fn same_bits(a: &Tensor, b: &Tensor) -> bool {
        let bits = |t: &Tensor| -> Vec<u32> {
            let v = t
                .flatten_all()
                .and_then(|t| t.to_vec1::<f32>())
                .expect("values");
            v.into_iter().map(f32::to_bits).collect()
        };
        a.dims() == b.dims() && bits(a) == bits(b)
    }

    /// A Flatten and a Dropout absorbed into the stack give the values and every
    /// gradient of the separate layers bit for bit (the same mask from the same
    /// draw; the input spans several of the mask's chunks), under the training
    /// loop's `backward`; without a mask (evaluation), those of the flattened
    /// input alone.
    #[test]
    fn absorbed_flatten_and_dropout_equal_the_separate_layers() {
        use crate::model::dropout::dropout;
        use crate::util::rng::Rng;
        let x = var(&[4, 16, 12, 12]);
        let params = [var(&[8, 2304]), var(&[8]), var(&[3, 8]), var(&[3])];
        let layers = [
            (params[0].as_tensor(), params[1].as_tensor(), Act::Relu),
            (params[2].as_tensor(), params[3].as_tensor(), Act::Identity),
        ];
        for training in [true, false] {
            let (mut r1, mut r2) = (Rng::new(5), Rng::new(5));
            let mask = if training {
                Mask::draw(0.25, &mut r1)
            } else {
                None
            };
            let input = Input {
                flatten: true,
                mask,
            };
            let fused = dense_stack_from(&x, input, &layers).expect("fused");
            let dropped = match training {
                true => dropout(x.as_tensor(), 0.25, &mut r2).expect("dropout"),
                false => x.as_tensor().clone(),
            };
            let flat = dropped.flatten_from(1).expect("flatten");
            let separate = dense_stack(&flat, &layers).expect("separate");
            assert_eq!(r1.state(), r2.state(), "one draw, training {training}");
            assert!(same_bits(&fused, &separate), "values, training {training}");
            let up = Tensor::randn(0f32, 1., fused.dims(), &Device::Cpu).expect("up");
            let grads = |y: Tensor| {
                (y * &up)
                    .and_then(|t| t.sum_all())
                    .and_then(|t| backward(&t))
                    .expect("backward")
            };
            let (gf, gs) = (grads(fused), grads(separate));
            for (i, v) in std::iter::once(&x).chain(&params).enumerate() {
                let (a, b) = (gf.get(v).expect("grad"), gs.get(v).expect("grad"));
                assert!(same_bits(a, b), "gradient {i}, training {training}");
            }
        }
    }

    #[test]
    fn widths_that_do_not_follow_are_refused() {
        let x = var(&[4, 6]);
        let (w1, b1) = (var(&[5, 6]), var(&[5]));
        let (w2, b2) = (var(&[3, 4]), var(&[3]));
        let layers = [
            (w1.as_tensor(), b1.as_tensor(), Act::Relu),
            (w2.as_tensor(), b2.as_tensor(), Act::Identity),
        ];
        assert!(dense_stack(&x, &layers).is_err(), "5 outputs into 4 inputs");
        assert!(dense_stack(&x, &[]).is_err(), "no layers");
        let flat = Input {
            flatten: true,
            mask: None,
        };
        let one = [(w1.as_tensor(), b1.as_tensor(), Act::Relu)];
        let line = var(&[6]);
        assert!(
            dense_stack_from(&line, flat, &one).is_err(),
            "no rows to flatten"
        );
        let wide = var(&[4, 2, 3]);
        let y = dense_stack_from(&wide, flat, &one).expect("[4, 2, 3] is 4 rows of 6");
        assert_eq!(y.dims(), [4, 5]);
        assert!(dense_stack(&wide, &one).is_err(), "unflattened: rows of 3");
    }

    #[test]
    fn nan_stays_visible_through_relu() {
        let dev = Device::Cpu;
        let x = Tensor::from_vec(vec![f32::NAN, 1.0, -1.0, 2.0], (2, 2), &dev).expect("x");
        let w = Tensor::from_vec(vec![1f32, 0.0, 0.0, 1.0], (2, 2), &dev).expect("w");
        let b = Tensor::zeros(2, candle_core::DType::F32, &dev).expect("b");
        let y = dense_stack(&x, &[(&w, &b, Act::Relu), (&w, &b, Act::Identity)])
            .and_then(|y| y.to_vec2::<f32>())
            .expect("stack");
        assert!(y[0][0].is_nan(), "a NaN input gives a NaN output: {y:?}");
        assert_eq!(y[1], vec![0.0, 2.0]);
    }
}
