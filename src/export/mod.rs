//! Bridges out of trainlab: an experiment (or a trained run) as a standalone
//! PyTorch script ([`pytorch`]); a trained run as an ONNX model ([`onnx`]),
//! float or int8 as QuantizeLinear/DequantizeLinear pairs.

mod error;
pub mod onnx;
mod onnx_graph;
mod onnx_proto;
mod onnx_qdq;
pub mod pytorch;
mod pytorch_dqn;
mod pytorch_text;

pub use error::ExportError;
