//! Bridges out of trainlab: an experiment (or a trained run) as a standalone
//! PyTorch script ([`pytorch`]).

pub mod pytorch;
mod pytorch_dqn;
mod pytorch_text;
