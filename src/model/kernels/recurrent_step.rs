//! One time step of a stacked LSTM or GRU for a few independent sequences at
//! once, in plain buffers: the inference path of text generation.
//!
//! Contract: `StepStack::new` takes a stack's weights (PyTorch's layout and gate
//! order, as `recurrent.rs` keeps them) and the embedding that feeds it, and
//! packs them once. Each sequence's state is one record of `width()` floats
//! (`new_record` writes a zero state); `step(records, ids)` advances `ids.len()`
//! records by one token each, every layer, and `top(record)` is the last layer's
//! hidden state. The values equal `recurrent.rs`'s layers (candle ops or the fused
//! kernels) run on the same tokens from a zero state, within float rounding
//! (tested in `model/windowed.rs` against `Model::forward`). A token id past the
//! embedding is the caller's bug (`windowed.rs` checks ids first).
//!
//! Layout of a record for `L` layers of width h: `[h_0 | 1 | h_1 | 1 | ... |
//! h_{L-1} | c_0 | ... | c_{L-1}]` (the cell states for an LSTM only). Layer 0 is
//! fed through a table: row i is vocabulary entry i's input projection plus bias
//! (`embedding @ w_ih^T + b_ih`, computed once), so its gates start from a row
//! lookup and its product reads `h_0` only (`k = h`). Layer l > 0 reads
//! `[h_{l-1} | 1 | h_l]`, which sits contiguous in the record: one product
//! against `[w_ih | bias | w_hh]^T` for an LSTM (`k = 2h + 1`); for a GRU two,
//! input and recurrent apart (its candidate gate needs `h W_hn^T + b_hn` on its
//! own). A layer's new hidden state overwrites its old one in place, where the
//! next layer reads it as its input. The products are `skinny.rs`'s packed
//! kernels (AVX-512, AVX2 or portable, `util::simd::level()` unless a test
//! forces one); the cells are vectorised at the same level.
//!
//! Why: at batch 1 a candle forward pass of a recurrent model is dominated by
//! per-step costs (op dispatch, allocation, packing the weights again, the
//! embedding and the output layer over every position). Here little is
//! allocated per token (the gate rows, the logits), and several sequences
//! share each pass over the weights.

use rayon::prelude::*;

use super::activation::{leveled_kernel, sigmoid, tanh};
use super::seq_layout::{MIN_RECURRENT_ROWS, rows_per_run};
use super::skinny::{PackedRhs, Start};
use crate::util::simd::Level;

/// Multiply-adds below which a step stays on the calling thread.
const POOL_MIN_WORK: usize = 1 << 20;

/// Which cell a stack runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StepCell {
    Lstm,
    Gru,
}

impl StepCell {
    fn gates(self) -> usize {
        match self {
            Self::Lstm => 4,
            Self::Gru => 3,
        }
    }
}

/// One layer's weights as stored: `w_ih [g·h, d]`, `w_hh [g·h, h]`, `b_ih [g·h]`
/// and, for a GRU, `b_hh [g·h]`, all row-major f32.
pub(crate) struct LayerValues {
    pub(crate) w_ih: Vec<f32>,
    pub(crate) w_hh: Vec<f32>,
    pub(crate) b_ih: Vec<f32>,
    pub(crate) b_hh: Option<Vec<f32>>,
}

/// One layer, packed for its products.
struct PackedLayer {
    /// LSTM: `w_hh^T` (layer 0) or `[w_ih | b_ih | w_hh]^T` (later layers).
    /// GRU: `w_hh^T`.
    recurrent: PackedRhs,
    /// GRU layers after the first: `w_ih^T`.
    input: Option<PackedRhs>,
    /// GRU only.
    b_ih: Vec<f32>,
    b_hh: Vec<f32>,
}

/// A stack packed for stepping (see the module comment).
pub(crate) struct StepStack {
    cell: StepCell,
    hidden: usize,
    level: Level,
    layers: Vec<PackedLayer>,
    /// Layer 0's input projection of each vocabulary entry, `[v, g·h]`.
    table: Vec<f32>,
    vocab: usize,
}

impl StepStack {
    /// Packs `layers` (all of width `hidden`, the first fed by `embedding [v, d]`)
    /// for the kernels of `level` (or the best the CPU has, if it lacks it).
    /// None when the shapes do not fit together.
    pub(crate) fn new(
        cell: StepCell,
        level: Level,
        embedding: &[f32],
        (vocab, dim, hidden): (usize, usize, usize),
        layers: &[LayerValues],
    ) -> Option<Self> {
        let g = cell.gates() * hidden;
        let fits = !layers.is_empty()
            && hidden > 0
            && embedding.len() == vocab * dim
            && layers.iter().enumerate().all(|(l, w)| {
                let d = if l == 0 { dim } else { hidden };
                w.w_ih.len() == g * d
                    && w.w_hh.len() == g * hidden
                    && w.b_ih.len() == g
                    && w.b_hh.as_ref().map_or(cell == StepCell::Lstm, |b| {
                        cell == StepCell::Gru && b.len() == g
                    })
            });
        if !fits {
            return None;
        }
        let level = level.or_best();
        let first = &layers[0];
        // table = embedding @ w_ih^T + b_ih, one skinny product over the vocabulary.
        let w_ih_t = PackedRhs::for_level(level, (dim, g), |r, c| first.w_ih[c * dim + r]);
        let mut table = vec![0f32; vocab * g];
        w_ih_t.matmul(vocab, &mut table, Start::Bias(&first.b_ih), embedding, dim);
        let h = hidden;
        let packed = layers
            .iter()
            .enumerate()
            .map(|(l, w)| {
                let w_hh_t = || PackedRhs::for_level(level, (h, g), |r, c| w.w_hh[c * h + r]);
                match cell {
                    StepCell::Lstm if l > 0 => PackedLayer {
                        recurrent: PackedRhs::for_level(level, (2 * h + 1, g), |r, c| {
                            if r < h {
                                w.w_ih[c * h + r]
                            } else if r == h {
                                w.b_ih[c]
                            } else {
                                w.w_hh[c * h + r - h - 1]
                            }
                        }),
                        input: None,
                        b_ih: Vec::new(),
                        b_hh: Vec::new(),
                    },
                    StepCell::Lstm => PackedLayer {
                        recurrent: w_hh_t(),
                        input: None,
                        b_ih: Vec::new(),
                        b_hh: Vec::new(),
                    },
                    StepCell::Gru => PackedLayer {
                        recurrent: w_hh_t(),
                        input: (l > 0)
                            .then(|| PackedRhs::for_level(level, (h, g), |r, c| w.w_ih[c * h + r])),
                        b_ih: w.b_ih.clone(),
                        b_hh: w.b_hh.clone().unwrap_or_default(),
                    },
                }
            })
            .collect();
        Some(Self {
            cell,
            hidden,
            level,
            layers: packed,
            table,
            vocab,
        })
    }

    /// Floats in one sequence's record.
    pub(crate) fn width(&self) -> usize {
        let (l, h) = (self.layers.len(), self.hidden);
        let cells = if self.cell == StepCell::Lstm {
            l * h
        } else {
            0
        };
        l * (h + 1) - 1 + cells
    }

    /// Entries of the vocabulary (token ids must be below this).
    pub(crate) fn vocab(&self) -> usize {
        self.vocab
    }

    /// Appends a zero state (the ones between layers set) to `records`.
    pub(crate) fn new_record(&self, records: &mut Vec<f32>) {
        let at = records.len();
        records.resize(at + self.width(), 0.0);
        for l in 1..self.layers.len() {
            records[at + l * (self.hidden + 1) - 1] = 1.0;
        }
    }

    /// The last layer's hidden state in `record`.
    pub(crate) fn top<'a>(&self, record: &'a [f32]) -> &'a [f32] {
        let at = (self.layers.len() - 1) * (self.hidden + 1);
        &record[at..at + self.hidden]
    }

    /// Advances the first `ids.len()` records of `records` by one token each
    /// (record r reads `ids[r]`), on the pool's threads when the work is large.
    pub(crate) fn step(&self, records: &mut [f32], ids: &[u32]) {
        let (w, n) = (self.width(), ids.len());
        let records = &mut records[..n * w];
        let g = self.cell.gates() * self.hidden;
        let work = n * self.layers.len() * (2 * self.hidden + 1) * g;
        let per = rows_per_run(n, MIN_RECURRENT_ROWS);
        if work < POOL_MIN_WORK || per >= n {
            self.step_run(records, ids);
        } else {
            records
                .par_chunks_mut(per * w)
                .zip(ids.par_chunks(per))
                .for_each(|(records, ids)| self.step_run(records, ids));
        }
    }

    /// `step` for one run of records on the calling thread.
    fn step_run(&self, records: &mut [f32], ids: &[u32]) {
        let (h, w, n) = (self.hidden, self.width(), ids.len());
        let g = self.cell.gates() * h;
        let mut gates = vec![0f32; n * g];
        let mut hproj = match self.cell {
            StepCell::Gru => vec![0f32; n * g],
            StepCell::Lstm => Vec::new(),
        };
        let cells_at = self.layers.len() * (h + 1) - 1;
        for (l, layer) in self.layers.iter().enumerate() {
            let h_at = l * (h + 1);
            if l == 0 {
                for (row, &id) in gates.chunks_exact_mut(g).zip(ids) {
                    row.copy_from_slice(&self.table[id as usize * g..][..g]);
                }
            }
            match self.cell {
                StepCell::Lstm => {
                    if l == 0 {
                        layer
                            .recurrent
                            .matmul(n, &mut gates, Start::Dst, records, w);
                    } else {
                        let z = &records[h_at - h - 1..];
                        layer.recurrent.matmul(n, &mut gates, Start::Zero, z, w);
                    }
                    lstm_cells(
                        self.level,
                        h,
                        &mut gates,
                        records,
                        w,
                        h_at,
                        cells_at + l * h,
                    );
                }
                StepCell::Gru => {
                    if let Some(input) = &layer.input {
                        let x = &records[h_at - h - 1..];
                        input.matmul(n, &mut gates, Start::Bias(&layer.b_ih), x, w);
                    }
                    let hs = &records[h_at..];
                    layer
                        .recurrent
                        .matmul(n, &mut hproj, Start::Bias(&layer.b_hh), hs, w);
                    gru_cells(self.level, h, &gates, &hproj, records, w, h_at);
                }
            }
        }
    }
}

leveled_kernel! {
    /// The LSTM cell for each record: activates `gates [n, 4h]` (i, f, g, o) in
    /// place, updates the record's cell state at `c_at` and writes its hidden
    /// state at `h_at`.
    fn lstm_cells(
        h: usize,
        gates: &mut [f32],
        records: &mut [f32],
        width: usize,
        h_at: usize,
        c_at: usize,
    ) {
        for (row, record) in gates.chunks_exact_mut(4 * h).zip(records.chunks_exact_mut(width)) {
            let (ifg, o) = row.split_at_mut(3 * h);
            let (i_f, gg) = ifg.split_at_mut(2 * h);
            i_f.iter_mut().for_each(|v| *v = sigmoid(*v));
            gg.iter_mut().for_each(|v| *v = tanh(*v));
            o.iter_mut().for_each(|v| *v = sigmoid(*v));
            let (i, f) = i_f.split_at(h);
            let (front, back) = record.split_at_mut(c_at);
            let hs = &mut front[h_at..h_at + h];
            let cs = &mut back[..h];
            for ((((c, hv), &i), &f), (&g, &o)) in cs
                .iter_mut()
                .zip(hs.iter_mut())
                .zip(i)
                .zip(f)
                .zip(gg.iter().zip(o.iter()))
            {
                *c = f * *c + i * g;
                *hv = o * tanh(*c);
            }
        }
    }
}

leveled_kernel! {
    /// The GRU cell for each record: from the input projections `gates [n, 3h]`
    /// and the recurrent ones `hproj [n, 3h]` (r, z, n), replaces the record's
    /// hidden state at `h_at`.
    fn gru_cells(
        h: usize,
        gates: &[f32],
        hproj: &[f32],
        records: &mut [f32],
        width: usize,
        h_at: usize,
    ) {
        for ((row, hp), record) in gates
            .chunks_exact(3 * h)
            .zip(hproj.chunks_exact(3 * h))
            .zip(records.chunks_exact_mut(width))
        {
            let hs = &mut record[h_at..h_at + h];
            let (xr, rest) = row.split_at(h);
            let (xz, xn) = rest.split_at(h);
            let (hr, rest) = hp.split_at(h);
            let (hz, hn) = rest.split_at(h);
            for (((hv, (&xr, &hr)), (&xz, &hz)), (&xn, &hn)) in hs
                .iter_mut()
                .zip(xr.iter().zip(hr))
                .zip(xz.iter().zip(hz))
                .zip(xn.iter().zip(hn))
            {
                let r = sigmoid(xr + hr);
                let z = sigmoid(xz + hz);
                let nv = tanh(xn + r * hn);
                *hv = nv + z * (*hv - nv);
            }
        }
    }
}
