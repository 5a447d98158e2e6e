//! `trainlab compress RUN_DIR`: the pruned variants of a trained run as a table,
//! the original first; `compress.json` beside them. Bad input (a sparsity outside
//! [0, 1), a folder with no model, a model with nothing to prune) is exit 2.

use std::process::ExitCode;

use super::EXIT_BAD_INPUT;
use super::args::CompressArgs;
use crate::compress::{CompressPlan, compress as make, default_out};
use crate::spec::PruneScope;

pub(crate) fn compress(args: &CompressArgs) -> ExitCode {
    let plan = CompressPlan {
        sparsities: args.sparsity.clone(),
        finetune_epochs: args.finetune_epochs,
        scope: if args.per_layer {
            PruneScope::PerLayer
        } else {
            PruneScope::Global
        },
        int8: args.int8,
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| default_out(&args.run_dir));
    // Before the run's data is loaded: an output that cannot be written is refused.
    if args.run_dir.is_dir()
        && let Err(code) = super::run::check_writable(&out)
    {
        return code;
    }
    match make(&args.run_dir, &plan, &out, &|line| eprintln!("{line}")) {
        Ok(rows) => {
            println!(
                "{:<22} {:>8} {:>9} {:>11} {:>12} {:>12} {:>12}",
                "variant", "sparsity", "test acc", "size", "sparse size", "batch 1/s", "batch 64/s"
            );
            for r in &rows {
                let figure = match (r.test_accuracy, r.bits_per_token) {
                    (_, Some(b)) => format!("{b:.3} bpt"),
                    (Some(a), None) => format!("{:.2} %", 100.0 * a),
                    (None, None) => "-".into(),
                };
                println!(
                    "{:<22} {:>7.1}% {:>9} {:>10}K {:>11}K {:>12.0} {:>12.0}",
                    r.name,
                    100.0 * r.sparsity,
                    figure,
                    r.size_bytes / 1024,
                    r.sparse_bytes / 1024,
                    r.samples_per_sec_batch1,
                    r.samples_per_sec_batch64
                );
            }
            eprintln!("variants and compress.json in {}", out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}
