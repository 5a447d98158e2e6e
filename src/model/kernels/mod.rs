//! trainlab's hand-written CPU kernels, each a candle custom op or the loop
//! behind one: im2col convolution and pooling, the fused dense, LSTM, GRU,
//! attention and transformer-block passes, the skinny and general matrix
//! products, the SIMD activations and loss, and the buffers they share (scratch
//! space, borrowed CPU data, sequence layouts).
//!
//! Contract: every kernel computes what candle's own ops compute for the same
//! layer (`Kernels::Reference`), to within float rounding, and is tested against
//! them beside its code; the layers in `model/` choose between the two. Long
//! functions are allowed here (an unrolled inner loop reads best whole).

pub(super) mod activation;
pub(super) mod attention_fused;
pub(super) mod block_fused;
pub(super) mod conv;
pub(super) mod conv_direct;
pub(super) mod conv_rows;
pub(super) mod cpu_data;
pub(super) mod dense_fused;
pub(super) mod fused;
pub(super) mod gemm;
pub(super) mod gru_fused;
pub(super) mod im2col;
pub(super) mod lstm_fused;
pub(super) mod pool;
pub(super) mod recurrent_step;
pub(super) mod scratch;
pub(super) mod seq_layout;
pub(super) mod skinny;
