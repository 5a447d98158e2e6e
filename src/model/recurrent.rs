//! LSTM and GRU layers over a batch of sequences, `[b, t, d] -> [b, t, h]`.
//!
//! The input projection of every step is one large matmul up front; only the
//! recurrent part runs step by step. On the CPU with f32 and `Kernels::Fast` the
//! recurrences are the fused ops in `lstm_fused.rs` and `gru_fused.rs`; everywhere
//! else (and as the tested reference) both cells are plain candle ops. State starts at zero for
//! every sequence. Gate order and weight names follow PyTorch (`weight_ih_l0`, ...).

use candle_core::{DType, Device, Result, Tensor};

use super::Kernels;
use super::dropout::dropout;
use super::init::{uniform, uniform_bound};
use super::kernels::cpu_data::fast_cpu;
use super::kernels::gru_fused::gru_sequence;
use super::kernels::lstm_fused::{lstm_from_table, lstm_layer};
use crate::util::rng::Rng;

/// Which recurrent cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cell {
    Lstm,
    Gru,
}

impl Cell {
    fn gates(self) -> usize {
        match self {
            Self::Lstm => 4,
            Self::Gru => 3,
        }
    }
}

/// Weights of one stacked layer.
pub(crate) struct RecurrentWeights {
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor,
    /// GRU only: its candidate gate needs the recurrent bias apart.
    b_hh: Option<Tensor>,
}

/// A stack of LSTM or GRU layers.
pub(crate) struct Recurrent {
    cell: Cell,
    layers: Vec<RecurrentWeights>,
    dropout: f64,
}

impl Recurrent {
    /// Creates the weights (PyTorch's uniform init), registering each with `param`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        cell: Cell,
        input: usize,
        hidden: usize,
        layers: usize,
        dropout: f64,
        rng: &mut Rng,
        device: &Device,
        param: &mut dyn FnMut(&str, Tensor) -> Result<Tensor>,
    ) -> Result<Self> {
        let g = cell.gates() * hidden;
        let bound = uniform_bound(hidden);
        let mut out = Vec::with_capacity(layers);
        for l in 0..layers {
            let d = if l == 0 { input } else { hidden };
            let w_ih = param(
                &format!("weight_ih_l{l}"),
                uniform(rng, &[g, d], bound, device)?,
            )?;
            let w_hh = param(
                &format!("weight_hh_l{l}"),
                uniform(rng, &[g, hidden], bound, device)?,
            )?;
            let (b_ih, b_hh) = match cell {
                Cell::Lstm => (
                    param(&format!("bias_l{l}"), uniform(rng, &[g], bound, device)?)?,
                    None,
                ),
                Cell::Gru => (
                    param(&format!("bias_ih_l{l}"), uniform(rng, &[g], bound, device)?)?,
                    Some(param(
                        &format!("bias_hh_l{l}"),
                        uniform(rng, &[g], bound, device)?,
                    )?),
                ),
            };
            out.push(RecurrentWeights {
                w_ih,
                w_hh,
                b_ih,
                b_hh,
            });
        }
        Ok(Self {
            cell,
            layers: out,
            dropout,
        })
    }

    /// The same stack with its weights cast to `dtype` (mixed precision).
    pub(crate) fn cast(&self, dtype: candle_core::DType) -> Result<Self> {
        let layers = self
            .layers
            .iter()
            .map(|w| {
                Ok(RecurrentWeights {
                    w_ih: w.w_ih.to_dtype(dtype)?,
                    w_hh: w.w_hh.to_dtype(dtype)?,
                    b_ih: w.b_ih.to_dtype(dtype)?,
                    b_hh: w.b_hh.as_ref().map(|b| b.to_dtype(dtype)).transpose()?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            cell: self.cell,
            layers,
            dropout: self.dropout,
        })
    }

    /// `[b, t, d] -> [b, t, h]`; dropout between stacked layers while training.
    pub(crate) fn forward(
        &self,
        xs: &Tensor,
        mut rng: Option<&mut Rng>,
        kernels: Kernels,
    ) -> Result<Tensor> {
        if fast_cpu(xs, kernels) {
            return self.forward_fused(xs, rng);
        }
        // Time-major inside: each step's rows are then one contiguous block.
        let mut x = xs.transpose(0, 1)?.contiguous()?;
        for (l, w) in self.layers.iter().enumerate() {
            if l > 0
                && self.dropout > 0.0
                && let Some(rng) = rng.as_deref_mut()
            {
                x = dropout(&x, self.dropout, rng)?;
            }
            let (t, b, d) = x.dims3()?;
            let proj = x
                .reshape((t * b, d))?
                .matmul(&w.w_ih.t()?)?
                .broadcast_add(&w.b_ih)?
                .reshape((t, b, ()))?;
            x = match self.cell {
                Cell::Lstm => lstm_reference(&proj, &w.w_hh)?,
                Cell::Gru => gru_steps(&proj, &w.w_hh, w.b_hh.as_ref())?,
            };
        }
        x.transpose(0, 1)?.contiguous()
    }
}

impl Recurrent {
    /// Whether the cells are LSTM cells (else GRU cells).
    pub(crate) fn is_lstm(&self) -> bool {
        self.cell == Cell::Lstm
    }

    /// Each layer's `(w_ih, w_hh, b_ih, b_hh)` (`b_hh` for a GRU only), first layer first.
    pub(crate) fn weights(
        &self,
    ) -> impl Iterator<Item = (&Tensor, &Tensor, &Tensor, Option<&Tensor>)> {
        self.layers
            .iter()
            .map(|w| (&w.w_ih, &w.w_hh, &w.b_ih, w.b_hh.as_ref()))
    }

    /// trainlab's CPU kernels, batch-major throughout: one fused Linear for every
    /// step's input projection, then the fused recurrence.
    fn forward_fused(&self, xs: &Tensor, rng: Option<&mut Rng>) -> Result<Tensor> {
        self.fused_layers_from(xs.contiguous()?, 0, rng)
    }

    /// Layers `first..` of the stack on `x`, the output of layer `first - 1` (or
    /// the stack's input), with trainlab's CPU kernels.
    fn fused_layers_from(
        &self,
        mut x: Tensor,
        first: usize,
        mut rng: Option<&mut Rng>,
    ) -> Result<Tensor> {
        for (l, w) in self.layers.iter().enumerate().skip(first) {
            if l > 0
                && self.dropout > 0.0
                && let Some(rng) = rng.as_deref_mut()
            {
                x = dropout(&x, self.dropout, rng)?;
            }
            x = match (self.cell, &w.b_hh) {
                (Cell::Lstm, _) => lstm_layer(&x, &w.w_ih, &w.b_ih, &w.w_hh)?,
                (Cell::Gru, Some(b_hh)) => {
                    let proj = super::kernels::fused::linear(&x, &w.w_ih, &w.b_ih)?;
                    gru_sequence(&proj, &w.w_hh, b_hh)?
                }
                (Cell::Gru, None) => candle_core::bail!("gru: layer {l} has no recurrent bias"),
            };
        }
        Ok(x)
    }

    /// The stack fed straight from an embedding: `tokens [b, t]` (u32) and the
    /// embedding's `[v, d]` vectors, when trainlab's CPU kernels have a faster
    /// way than embedding first. They do for an LSTM whose vocabulary is no
    /// larger than the batch's token count: its first layer projects each
    /// vocabulary entry once and looks rows up (`lstm_from_table`). None: take
    /// the ordinary path.
    pub(crate) fn forward_from_tokens(
        &self,
        tokens: &Tensor,
        embeddings: &Tensor,
        rng: Option<&mut Rng>,
        kernels: Kernels,
    ) -> Option<Result<Tensor>> {
        let first = self.layers.first()?;
        let fits = self.cell == Cell::Lstm
            && fast_cpu(embeddings, kernels)
            && tokens.dtype() == DType::U32
            && tokens.rank() == 2
            && embeddings.dim(0).is_ok_and(|v| v <= tokens.elem_count());
        fits.then(|| {
            let table = embeddings
                .matmul(&first.w_ih.t()?)?
                .broadcast_add(&first.b_ih)?;
            let x = lstm_from_table(&table, tokens, &first.w_hh)?;
            self.fused_layers_from(x, 1, rng)
        })
    }
}

/// The LSTM recurrence in plain candle ops: `[t, b, 4h] -> [t, b, h]`.
pub(crate) fn lstm_reference(proj: &Tensor, w_hh: &Tensor) -> Result<Tensor> {
    let (t, b, g4) = proj.dims3()?;
    let h = g4 / 4;
    let w_t = w_hh.t()?;
    let mut hprev = Tensor::zeros((b, h), proj.dtype(), proj.device())?;
    let mut c = hprev.clone();
    let mut outs = Vec::with_capacity(t);
    for step in 0..t {
        let g = (proj.get(step)? + hprev.matmul(&w_t)?)?;
        let i = candle_nn::ops::sigmoid(&g.narrow(1, 0, h)?)?;
        let f = candle_nn::ops::sigmoid(&g.narrow(1, h, h)?)?;
        let gg = g.narrow(1, 2 * h, h)?.tanh()?;
        let o = candle_nn::ops::sigmoid(&g.narrow(1, 3 * h, h)?)?;
        c = ((f * c)? + (i * gg)?)?;
        hprev = (o * c.tanh()?)?;
        outs.push(hprev.clone());
    }
    Tensor::stack(&outs, 0)
}

/// The GRU recurrence in candle ops: `[t, b, 3h] -> [t, b, h]`.
fn gru_steps(proj: &Tensor, w_hh: &Tensor, b_hh: Option<&Tensor>) -> Result<Tensor> {
    let (t, b, g3) = proj.dims3()?;
    let h = g3 / 3;
    let w_t = w_hh.t()?;
    let mut hprev = Tensor::zeros((b, h), proj.dtype(), proj.device())?;
    let mut outs = Vec::with_capacity(t);
    for step in 0..t {
        let x = proj.get(step)?;
        let mut r_h = hprev.matmul(&w_t)?;
        if let Some(bias) = b_hh {
            r_h = r_h.broadcast_add(bias)?;
        }
        let rz = candle_nn::ops::sigmoid(&(x.narrow(1, 0, 2 * h)? + r_h.narrow(1, 0, 2 * h)?)?)?;
        let r = rz.narrow(1, 0, h)?;
        let z = rz.narrow(1, h, h)?;
        let n = (x.narrow(1, 2 * h, h)? + (r * r_h.narrow(1, 2 * h, h)?)?)?.tanh()?;
        // h = (1 - z) * n + z * h_prev = n + z * (h_prev - n)
        hprev = (&n + (z * (hprev - &n)?)?)?;
        outs.push(hprev.clone());
    }
    Tensor::stack(&outs, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_tensors::max_diff;
    use candle_core::Var;

    fn random(rng: &mut Rng, shape: &[usize]) -> Result<Tensor> {
        uniform(rng, shape, 0.5, &Device::Cpu)
    }

    /// Backpropagates a loss that weighs every output differently (so every
    /// path is checked) through `fast` and `slow`, and compares the gradients
    /// of `vars` (each within 1e-4).
    fn assert_same_gradients(
        case: &str,
        (fast, slow): (&Tensor, &Tensor),
        weights: &Tensor,
        vars: &[(&str, &Var)],
    ) -> Result<()> {
        let gf = (fast * weights)?.sum_all()?.backward()?;
        let gs = (slow * weights)?.sum_all()?.backward()?;
        for (name, v) in vars {
            let (Some(a), Some(b)) = (gf.get(v.as_tensor()), gs.get(v.as_tensor())) else {
                panic!("{case}: missing {name} gradient");
            };
            let diff = max_diff(a, b)?;
            assert!(diff < 1e-4, "{case}: {name} gradient differs by {diff}");
        }
        Ok(())
    }

    #[test]
    fn fused_lstm_matches_reference_values_and_gradients() -> Result<()> {
        // Small; then more rows than one register tile per core and gate
        // columns that end inside a panel; then one sequence (text generation:
        // one-row tiles, k split over accumulator sets) across several panels.
        for (t, b, d, h) in [(5, 3, 6, 8), (4, 37, 5, 13), (6, 1, 7, 45)] {
            let mut rng = Rng::new(7);
            let x = Var::from_tensor(&random(&mut rng, &[b, t, d])?)?;
            let w_ih = Var::from_tensor(&random(&mut rng, &[4 * h, d])?)?;
            let bias = Var::from_tensor(&random(&mut rng, &[4 * h])?)?;
            let w = Var::from_tensor(&random(&mut rng, &[4 * h, h])?)?;
            let weights = random(&mut rng, &[b, t, h])?;
            let fast = lstm_layer(&x, &w_ih, &bias, &w)?;
            // The reference: the projection in candle ops, the recurrence time-major.
            let proj = x
                .as_tensor()
                .matmul(
                    &w_ih
                        .as_tensor()
                        .t()?
                        .unsqueeze(0)?
                        .broadcast_as((b, d, 4 * h))?,
                )?
                .broadcast_add(bias.as_tensor())?;
            let slow = lstm_reference(&proj.transpose(0, 1)?.contiguous()?, &w)?.transpose(0, 1)?;
            assert_eq!(fast.dims(), &[b, t, h]);
            assert!(max_diff(&fast, &slow)? < 1e-5, "{b}x{t}x{d}, h {h}: values");
            let vars = [("x", &x), ("w_ih", &w_ih), ("bias", &bias), ("w_hh", &w)];
            let case = format!("{b}x{t}x{d}, h {h}");
            assert_same_gradients(&case, (&fast, &slow), &weights, &vars)?;
        }
        Ok(())
    }

    #[test]
    fn lstm_fed_by_a_table_matches_embedding_then_lstm() -> Result<()> {
        use candle_nn::Module;
        // One layer with tiles and panels ending early; two stacked layers with
        // more rows than a run; one sequence (text generation's shape).
        for (b, t, v, d, h, layers) in [
            (5, 4, 9, 6, 8, 1),
            (37, 3, 11, 5, 13, 2),
            (1, 9, 7, 4, 20, 1),
        ] {
            let mut rng = Rng::new(11);
            let mut vars = Vec::new();
            let mut param = |name: &str, t: Tensor| {
                let var = Var::from_tensor(&t)?;
                vars.push((name.to_string(), var.clone()));
                Ok(var.as_tensor().clone())
            };
            let r = Recurrent::new(
                Cell::Lstm,
                d,
                h,
                layers,
                0.0,
                &mut rng,
                &Device::Cpu,
                &mut param,
            )?;
            let emb = Var::from_tensor(&random(&mut rng, &[v, d])?)?;
            vars.push(("embedding".into(), emb.clone()));
            let ids: Vec<u32> = (0..b * t).map(|i| ((i * 7 + i / 3) % v) as u32).collect();
            let tokens = Tensor::from_vec(ids, (b, t), &Device::Cpu)?;
            let weights = random(&mut rng, &[b, t, h])?;
            let Some(fast) = r.forward_from_tokens(&tokens, &emb, None, Kernels::Fast) else {
                panic!("{b}x{t}, vocabulary {v}: the table path was not taken");
            };
            let fast = fast?;
            let x = candle_nn::Embedding::new(emb.as_tensor().clone(), d).forward(&tokens)?;
            let slow = r.forward(&x, None, Kernels::Reference)?;
            assert_eq!(fast.dims(), &[b, t, h]);
            assert!(max_diff(&fast, &slow)? < 1e-5, "{b}x{t}, h {h}: values");
            let vars: Vec<(&str, &Var)> = vars.iter().map(|(n, v)| (n.as_str(), v)).collect();
            let case = format!("{b}x{t}, vocabulary {v}, h {h}, {layers} layers");
            assert_same_gradients(&case, (&fast, &slow), &weights, &vars)?;
        }
        Ok(())
    }

    #[test]
    fn the_table_path_is_only_taken_where_it_fits() -> Result<()> {
        let mut rng = Rng::new(3);
        let mut param = |_: &str, t: Tensor| Ok(t);
        let lstm = Recurrent::new(Cell::Lstm, 4, 6, 1, 0.0, &mut rng, &Device::Cpu, &mut param)?;
        let gru = Recurrent::new(Cell::Gru, 4, 6, 1, 0.0, &mut rng, &Device::Cpu, &mut param)?;
        let emb = random(&mut rng, &[10, 4])?;
        let tokens = |ids: &[u32]| Tensor::from_vec(ids.to_vec(), (2, ids.len() / 2), &Device::Cpu);
        let ten = tokens(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 0])?;
        // A vocabulary larger than the batch's tokens, a GRU, candle's kernels.
        let four = tokens(&[1, 2, 3, 4])?;
        assert!(
            lstm.forward_from_tokens(&four, &emb, None, Kernels::Fast)
                .is_none()
        );
        assert!(
            gru.forward_from_tokens(&ten, &emb, None, Kernels::Fast)
                .is_none()
        );
        assert!(
            lstm.forward_from_tokens(&ten, &emb, None, Kernels::Reference)
                .is_none()
        );
        // An id past the vocabulary is an error, not a panic.
        let bad = tokens(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10])?;
        let Some(Err(e)) = lstm.forward_from_tokens(&bad, &emb, None, Kernels::Fast) else {
            panic!("token 10 of a 10-entry vocabulary was accepted");
        };
        assert!(e.to_string().contains("token id 10"), "{e}");
        Ok(())
    }

    #[test]
    fn fused_gru_matches_reference_values_and_gradients() -> Result<()> {
        // Small; then several register tiles per core and a partial panel;
        // then one sequence (one-row tiles) across several panels.
        for (t, b, h) in [(6, 5, 8), (3, 37, 13), (5, 1, 45)] {
            let mut rng = Rng::new(9);
            let proj = Var::from_tensor(&random(&mut rng, &[t, b, 3 * h])?)?;
            let w = Var::from_tensor(&random(&mut rng, &[3 * h, h])?)?;
            let bhh = Var::from_tensor(&random(&mut rng, &[3 * h])?)?;
            let weights = random(&mut rng, &[t, b, h])?;
            // The fused op is batch-major, the reference time-major.
            let fast =
                gru_sequence(&proj.as_tensor().transpose(0, 1)?, &w, &bhh)?.transpose(0, 1)?;
            let slow = gru_steps(&proj, &w, Some(&bhh))?;
            assert_eq!(fast.dims(), &[t, b, h]);
            assert!(max_diff(&fast, &slow)? < 1e-5);
            let vars = [("input", &proj), ("w_hh", &w), ("b_hh", &bhh)];
            let case = format!("{t}x{b}, h {h}");
            assert_same_gradients(&case, (&fast, &slow), &weights, &vars)?;
        }
        Ok(())
    }

    #[test]
    fn stacked_shapes_and_kernels_agree() -> Result<()> {
        let mut rng = Rng::new(1);
        for cell in [Cell::Lstm, Cell::Gru] {
            let mut count = 0;
            let mut param = |_: &str, t: Tensor| {
                count += t.elem_count();
                Ok(t)
            };
            let r = Recurrent::new(cell, 6, 10, 2, 0.0, &mut rng, &Device::Cpu, &mut param)?;
            let xs = random(&mut rng, &[4, 7, 6])?;
            let a = r.forward(&xs, None, Kernels::Fast)?;
            let b = r.forward(&xs, None, Kernels::Reference)?;
            assert_eq!(a.dims(), &[4, 7, 10]);
            assert!(max_diff(&a, &b)? < 1e-5);
            let g = cell.gates() * 10;
            let bias = if cell == Cell::Lstm { g } else { 2 * g };
            assert_eq!(count, g * (6 + 10) + bias + g * (10 + 10) + bias);
        }
        Ok(())
    }

    #[test]
    fn gru_matches_a_scalar_hand_computation() -> Result<()> {
        // One unit, one step, zero state: h = (1 - z) * tanh(x_n + r * b_hn).
        let proj = Tensor::new(&[[[0.3f32, -0.2, 0.5]]], &Device::Cpu)?;
        let w = Tensor::new(&[[0.7f32], [0.1], [-0.4]], &Device::Cpu)?;
        let bhh = Tensor::new(&[0.0f32, 0.0, 0.25], &Device::Cpu)?;
        let out = gru_steps(&proj, &w, Some(&bhh))?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let s = |x: f32| 1.0 / (1.0 + (-x).exp());
        let (r, z) = (s(0.3), s(-0.2));
        let want = (1.0 - z) * (0.5 + r * 0.25f32).tanh();
        assert!((out[0] - want).abs() < 1e-6, "{} vs {want}", out[0]);
        Ok(())
    }
}
