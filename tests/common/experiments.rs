//! Pieces of the small experiments the training tests build, written once.

use trainlab::spec::{
    AgentMethod, AgentSpec, BundledText, DatasetSpec, EpsilonSpec, LanguageModelSpec, LayerSpec,
    SampleSpec, TextDatasetSpec, TextSource, TextTask,
};

/// A character language model on the first `limit` texts of `source`, windows
/// of `seq_len`; `samples`: a sample of `length` characters every `every` steps
/// as `(every, length)`, or none.
pub fn char_lm_data(
    source: BundledText,
    limit: usize,
    seq_len: usize,
    samples: Option<(usize, usize)>,
) -> DatasetSpec {
    DatasetSpec::Text(TextDatasetSpec {
        source: TextSource::Bundled(source),
        limit: Some(limit),
        task: TextTask::LanguageModel(LanguageModelSpec {
            seq_len,
            sample_every_steps: samples.map(|(every, _)| every),
            sample: samples.map_or_else(SampleSpec::default, |(_, length)| SampleSpec {
                length,
                ..SampleSpec::default()
            }),
        }),
        ..TextDatasetSpec::default()
    })
}

/// A maze agent: `method` for `episodes` episodes, exploring from all random to
/// 5 % over the first half, a record every 5 episodes.
pub fn maze_agent(method: AgentMethod, episodes: usize) -> AgentSpec {
    AgentSpec {
        method,
        episodes,
        epsilon: EpsilonSpec {
            start: 1.0,
            end: 0.05,
            decay_episodes: episodes / 2,
        },
        log_every_episodes: 5,
        ..AgentSpec::default()
    }
}

/// An embedding of `dim` into one LSTM layer of `hidden` units, no dropout.
pub fn embedding_lstm(dim: usize, hidden: usize) -> Vec<LayerSpec> {
    vec![
        LayerSpec::Embedding { dim },
        LayerSpec::LSTM {
            hidden,
            layers: 1,
            dropout: 0.0,
        },
    ]
}

/// An embedding of `dim` into one GRU layer of `hidden` units, no dropout.
pub fn embedding_gru(dim: usize, hidden: usize) -> Vec<LayerSpec> {
    vec![
        LayerSpec::Embedding { dim },
        LayerSpec::GRU {
            hidden,
            layers: 1,
            dropout: 0.0,
        },
    ]
}
