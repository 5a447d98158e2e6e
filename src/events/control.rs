//! Messages a consumer sends to a running worker. The worker checks for them
//! between steps, so each takes effect within one step.

/// A request to the training worker.
#[derive(Debug, Clone, PartialEq)]
pub enum Control {
    /// Hold before the next step until Resume or Stop.
    Pause,
    /// Continue after Pause.
    Resume,
    /// End the run after the current step: test evaluation, summary and weights are
    /// still written.
    Stop,
    /// Replace the peak learning rate from the next step on (the schedule still
    /// applies); recorded in the run as an LrChanged event.
    SetLearningRate(f64),
    /// Slow motion: at most this many steps (gridworld: episodes) per second from
    /// now on; None is full speed. Changes only when steps happen, never what
    /// they compute, so a paced run records the same metrics; not recorded.
    SetPace(Option<f64>),
    /// Ask a question of the live model without disturbing training; answered
    /// between steps (also while paused) by a [`TrainEvent::Probed`] that is not
    /// recorded in the run.
    Probe(Probe),
}

/// A question about the model as it is right now.
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    /// Class probabilities for one grey image (`rows * cols` bytes, 0 = black),
    /// normalised exactly as training data is.
    Classify {
        /// Caller's tag, echoed in the answer so stale answers can be ignored.
        id: u64,
        /// Row-major pixels.
        pixels: Vec<u8>,
    },
    /// The first layer's weights (for drawing them as images).
    FirstLayer,
    /// Continue `prompt` with the live language model; answered by
    /// `ProbeAnswer::Generated` (or `Unavailable` for other models).
    Generate {
        /// Caller's tag.
        id: u64,
        /// Text to continue (may be empty).
        prompt: String,
        /// Softmax temperature (> 0).
        temperature: f64,
        /// Draw only from the k most likely tokens.
        top_k: Option<usize>,
        /// Tokens to generate.
        length: usize,
    },
    /// The 2-D playground: the model's output and every hidden unit's output over
    /// a `resolution` x `resolution` grid covering the plane (-6..6 on both
    /// axes), with the Linear layers' weights; answered by `ProbeAnswer::Field`.
    Field {
        /// Caller's tag.
        id: u64,
        /// Grid points per side (2 to 200).
        resolution: usize,
    },
    /// Class probabilities for one text with the live text classifier; answered by
    /// `ProbeAnswer::Classified` (binary models: [p(first class), p(second class)]).
    ClassifyText {
        /// Caller's tag.
        id: u64,
        /// The text.
        text: String,
    },
    /// The projector on the live model: image runs, a layer's activations for
    /// the first test images (at most `limit`, fewer for a wide layer) in 2-D by
    /// PCA; text runs, the embedding table. Answered by `ProbeAnswer::Projected`.
    Project {
        /// Caller's tag.
        id: u64,
        /// Index in the layer list (None: the input of the last layer).
        layer: Option<usize>,
        /// Test images at most.
        limit: usize,
    },
    /// Saliency on the live model: which values of one grey image (as for
    /// `Classify`) the score of `class` depends on (None: the class it
    /// predicts). Answered by `ProbeAnswer::Attributed`.
    Saliency {
        /// Caller's tag.
        id: u64,
        /// Row-major pixels.
        pixels: Vec<u8>,
        /// The class explained (None: the predicted one).
        class: Option<usize>,
        /// Gradient or integrated gradients.
        method: super::SaliencyMethod,
    },
}
