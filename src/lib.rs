//! trainlab: a workbench for training neural networks interactively.
//!
//! Data flows one way: an experiment file ([`spec`]) names the data ([`data`]) and
//! the layer list ([`model`]); the worker ([`train`]) owns device, data, model and
//! optimizer and reports [`events::TrainEvent`]s, recorded on disk by [`runs`] and
//! shown by the GUI or the [`cli`]. Consumers steer a run only through
//! [`events::Control`] messages.

pub mod cli;
pub mod compress;
pub mod data;
pub mod events;
pub mod export;
pub mod gui;
pub mod infer;
pub mod lesson;
pub mod model;
pub mod quant;
pub mod runs;
pub mod spec;
pub mod study;
pub mod train;
pub mod util;
