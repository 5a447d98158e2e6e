//! Bridges out of trainlab: an experiment (or a trained run) as a standalone
//! PyTorch script ([`pytorch`]); a trained run as an ONNX model ([`onnx`]).

pub mod onnx;
mod onnx_proto;
pub mod pytorch;
mod pytorch_dqn;
mod pytorch_text;
