//! trainlab: a workbench for training neural networks interactively.
//!
//! Data flows one way: an experiment file ([`spec`]) names the data ([`data`]) and
//! the layer list ([`model`]); the worker ([`train`]) owns device, data, model and
//! optimizer and reports [`train::TrainEvent`]s, recorded on disk by [`runs`] and
//! shown by the GUI or the [`cli`]. Consumers steer a run only through
//! [`train::Control`] messages.

pub mod cli;
pub mod data;
pub mod export;
pub mod gui;
pub mod lesson;
pub mod model;
pub mod quant;
pub mod runs;
pub mod spec;
pub mod study;
pub mod text;
pub mod train;
pub mod util;
