//! The one switch for which instruction set trainlab's hand-written CPU kernels use.
//!
//! Contract: `level()` is the best of AVX-512, AVX2+FMA and portable (plain Rust,
//! which compiles to SSE on x86_64 and NEON on aarch64) that this CPU runs, unless
//! `TRAINLAB_SIMD=avx512|avx2|portable` asks for a lower one. It is decided once
//! per process. Asking for a level the CPU lacks gives the best it has (with one
//! line on stderr), never an instruction the CPU cannot run; an unknown value is
//! ignored the same way. Every kernel's dispatch (skinny products, activations,
//! int8 dot products) asks here, so one variable measures or tests a whole path.
//!
//! The `gemm` crate (ours and candle's GEMM) is not covered: it picks AVX-512 or
//! AVX2 itself at its first call and has no run-time switch (see benches/README.md).

use std::sync::OnceLock;

/// An instruction-set level, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Plain Rust; whatever the compiler makes of it for the target's baseline.
    Portable,
    /// 256-bit AVX2 with FMA.
    Avx2,
    /// 512-bit AVX-512F (with AVX2 and FMA).
    Avx512,
}

impl Level {
    /// The name `TRAINLAB_SIMD` takes for this level.
    pub fn name(self) -> &'static str {
        match self {
            Self::Portable => "portable",
            Self::Avx2 => "avx2",
            Self::Avx512 => "avx512",
        }
    }

    /// Parses a `TRAINLAB_SIMD` value.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Portable, Self::Avx2, Self::Avx512]
            .into_iter()
            .find(|l| l.name() == text.trim().to_ascii_lowercase())
    }

    /// Whether this CPU can run `self`'s instructions.
    pub fn available(self) -> bool {
        match self {
            Self::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Self::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            Self::Avx512 => {
                Self::Avx2.available() && std::arch::is_x86_feature_detected!("avx512f")
            }
            #[cfg(not(target_arch = "x86_64"))]
            Self::Avx2 | Self::Avx512 => false,
        }
    }

    /// The best level this CPU runs.
    pub fn best() -> Self {
        [Self::Avx512, Self::Avx2]
            .into_iter()
            .find(|l| l.available())
            .unwrap_or(Self::Portable)
    }

    /// `self` if the CPU runs it, else the best level it does run.
    pub fn or_best(self) -> Self {
        if self.available() { self } else { Self::best() }
    }
}

/// The level every kernel uses in this process (see the module comment).
pub fn level() -> Level {
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let asked = std::env::var("TRAINLAB_SIMD").ok();
        let (level, note) = choose(asked.as_deref(), Level::best());
        if let Some(note) = note {
            eprintln!("trainlab: {note}");
        }
        level
    })
}

/// The level for a `TRAINLAB_SIMD` value on a CPU whose best level is `best`, and
/// the note to print when the value cannot be honoured.
fn choose(asked: Option<&str>, best: Level) -> (Level, Option<String>) {
    let Some(text) = asked.filter(|t| !t.trim().is_empty()) else {
        return (best, None);
    };
    match Level::parse(text) {
        Some(level) if level <= best => (level, None),
        Some(level) => (
            best,
            Some(format!(
                "TRAINLAB_SIMD={} is not supported by this CPU; using {}",
                level.name(),
                best.name()
            )),
        ),
        None => (
            best,
            Some(format!(
                "TRAINLAB_SIMD={text:?} is not one of avx512, avx2, portable; using {}",
                best.name()
            )),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_level_is_honoured_only_where_the_cpu_has_it() {
        use Level::*;
        for (asked, best, want, noted) in [
            (None, Avx512, Avx512, false),
            (Some(""), Avx2, Avx2, false),
            (Some("portable"), Avx512, Portable, false),
            (Some("AVX2"), Avx512, Avx2, false),
            (Some("avx512"), Avx2, Avx2, true),
            (Some("avx2"), Portable, Portable, true),
            (Some("sse9"), Avx2, Avx2, true),
        ] {
            let (got, note) = choose(asked, best);
            assert_eq!(
                (got, note.is_some()),
                (want, noted),
                "{asked:?} on {best:?}"
            );
        }
        assert!(Level::Portable.available());
        assert!(Level::best().available());
        assert!(level().available());
        assert_eq!(Level::Avx512.or_best(), Level::best());
    }
}
