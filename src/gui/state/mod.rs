//! The state behind the views, with no drawing in it: what the GUI knows about
//! each run (folded from the worker's events), the run in progress, background
//! jobs, the trained model under inspection, and the pure series maths
//! (smoothing, min/max aggregation) the plots are built from.
//!
//! Contract: views read these and report what the user did; only the app and
//! the event stream change them.

pub(super) mod aggregate;
pub(super) mod compress;
pub(super) mod inspect;
pub(super) mod job;
pub(super) mod live;
pub(super) mod run_state;
pub(super) mod smoothing;
