//! Finding a Python that imports torch, for the benches that run a PyTorch twin.

use std::process::Command;

/// `$TRAINLAB_PYTHON`, the venv `.ci/run` installs, or `python3`: the first that
/// imports torch (the same search as tests/pytorch_export.rs); None if none does.
pub fn torch_python() -> Option<String> {
    [
        std::env::var("TRAINLAB_PYTHON").ok(),
        Some("/opt/trainlab-torch/bin/python".to_string()),
        Some("python3".to_string()),
    ]
    .into_iter()
    .flatten()
    .find(|p| {
        Command::new(p)
            .args(["-c", "import torch"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}
