//! What the events and background jobs feed, for several views to read: each
//! run as the GUI knows it (`run_state`: folded from the worker's events, never
//! per frame), the run in progress (`live`), the trained model under inspection
//! with the live model's answers to probes (`inspect`: read by the Confusion,
//! Mistakes, Weights, Draw and Projector tabs), the past runs ticked for
//! comparison (`overlay`: read by the Curves and Layers tabs), and the background
//! [`job::Job`] that every slow load runs on.
//!
//! The rule: a piece of GUI state lives here only if the event stream or a
//! background job writes it and more than one view reads it. A view's own state
//! (what the learner scrolled, zoomed, toggled, picked, and whatever only that view
//! loads or caches) is a `<View>State` struct in the view's file, or in `state.rs`
//! of a folder view, and `views::ViewStates` holds one of each. Pure plot maths
//! (smoothing, min/max aggregation) is in `figure/`.
//!
//! Contract: views read these and report what the user did; only the app and
//! the event stream change them. No drawing here.

pub(super) mod inspect;
pub(super) mod job;
pub(super) mod live;
pub(super) mod overlay;
pub(super) mod run_state;
