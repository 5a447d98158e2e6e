//! What the .deb packs, without dpkg (`.ci/package-check.sh` does the real
//! install): `trainlab generate man DIR` writes a man page for the command and
//! for every visible subcommand, each naming its own subcommands and options;
//! `trainlab generate completions DIR` writes bash, zsh and fish scripts that
//! know every subcommand; the hidden `generate` itself is in neither; an
//! unwritable folder is exit 2. Every file [package.metadata.deb] lists from
//! the repository exists, and the desktop entry opens the GUI with the icon the
//! package installs.

mod common;

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use common::trainlab;

/// The visible subcommands of `cmd` (not `help`).
fn visible(cmd: &clap::Command) -> Vec<&clap::Command> {
    cmd.get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        .collect()
}

/// Runs `trainlab generate KIND DIR`, which must succeed.
fn generate(kind: &str, dir: &Path) {
    let o = trainlab()
        .args(["generate", kind])
        .arg(dir)
        .output()
        .expect("runs");
    assert!(
        o.status.success(),
        "generate {kind}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn man_pages_cover_every_subcommand() {
    let dir = tempfile::tempdir().expect("tmp");
    generate("man", dir.path());
    let cli = trainlab::cli::Cli::command();
    let top = std::fs::read_to_string(dir.path().join("trainlab.1")).expect("trainlab.1");
    assert!(
        top.starts_with(".ie") || top.contains(".TH"),
        "troff: {top:.200}"
    );
    assert!(top.contains("trainlab"), "{top:.400}");
    let subs = visible(&cli);
    assert!(subs.len() >= 8, "{} subcommands", subs.len());
    for sub in subs {
        let name = sub.get_name();
        // The top page lists it as trainlab-NAME(1) (troff escapes each dash) ...
        assert!(
            top.contains(&format!("trainlab\\-{}(1)", name.replace('-', "\\-"))),
            "trainlab.1 does not list {name}"
        );
        // ... and it has its own page, which lists its subcommands in turn.
        let page = dir.path().join(format!("trainlab-{name}.1"));
        let text = std::fs::read_to_string(&page).expect("a page per subcommand");
        for nested in visible(sub) {
            let nested_page = dir
                .path()
                .join(format!("trainlab-{name}-{}.1", nested.get_name()));
            assert!(nested_page.is_file(), "{}", nested_page.display());
            assert!(
                text.contains(nested.get_name()),
                "{name}: {}",
                nested.get_name()
            );
        }
    }
    let onnx = std::fs::read_to_string(dir.path().join("trainlab-export-onnx.1")).expect("onnx");
    assert!(onnx.contains("int8"), "{onnx}");
    // The packaging helper stays out of the documentation.
    assert!(!dir.path().join("trainlab-generate.1").exists());
    assert!(!top.contains("trainlab\\-generate"), "{top}");
    // man itself renders the page, where man is installed.
    let rendered = std::process::Command::new("man")
        .arg("-l")
        .arg(dir.path().join("trainlab-run.1"))
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output();
    if let Ok(o) = rendered {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(text.contains("--halt-after"), "{text}");
    }
}

#[test]
fn completions_know_every_subcommand_in_three_shells() {
    let dir = tempfile::tempdir().expect("tmp");
    generate("completions", dir.path());
    let cli = trainlab::cli::Cli::command();
    for file in ["trainlab.bash", "_trainlab", "trainlab.fish"] {
        let text = std::fs::read_to_string(dir.path().join(file)).expect(file);
        for sub in visible(&cli) {
            assert!(text.contains(sub.get_name()), "{file}: {}", sub.get_name());
        }
        for option in ["halt-after", "finetune-epochs", "int8"] {
            assert!(text.contains(option), "{file}: --{option}");
        }
    }
    // The bash script parses.
    if let Ok(o) = std::process::Command::new("bash")
        .arg("-n")
        .arg(dir.path().join("trainlab.bash"))
        .output()
    {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
}

#[test]
fn an_unwritable_folder_is_exit_2_naming_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a folder").expect("write");
    for kind in ["man", "completions"] {
        let o = trainlab()
            .args(["generate", kind])
            .arg(file.join("pages"))
            .output()
            .expect("runs");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{kind}: {err}");
        assert!(err.contains("a-file"), "{err}");
    }
}

/// The source patterns of `assets = [...]` in [package.metadata.deb].
fn deb_sources(manifest: &str) -> Vec<String> {
    let start = manifest
        .find("[package.metadata.deb]")
        .expect("deb metadata");
    let block = &manifest[start..];
    let assets = &block[block.find("assets = [").expect("assets")..];
    let end = assets.find("\n]").expect("end of assets");
    assets[..end]
        .lines()
        .filter_map(|l| l.trim().strip_prefix("[\""))
        .filter_map(|l| l.split('"').next())
        .map(str::to_string)
        .collect()
}

/// The files `pattern` names: a path, or a folder and `*` / `*.ext`.
fn matches(root: &Path, pattern: &str) -> Vec<PathBuf> {
    let path = root.join(pattern);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let Some(ext) = name.strip_prefix('*') else {
        return vec![path].into_iter().filter(|p| p.is_file()).collect();
    };
    let dir = path.parent().expect("a folder");
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file() && p.to_string_lossy().ends_with(ext))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_deb_lists_files_that_exist_and_a_working_desktop_entry() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("Cargo.toml");
    let sources = deb_sources(&manifest);
    for needed in [
        "target/release/trainlab",
        "assets/trainlab.desktop",
        "experiments/*.ron",
        "experiments/lessons/*.ron",
        "assets/mnist/*.gz",
    ] {
        assert!(sources.iter().any(|s| s == needed), "{needed}: {sources:?}");
    }
    // Built or generated ones come from scripts/package-deb.sh; the rest is in
    // the repository.
    for s in sources.iter().filter(|s| !s.starts_with("target/")) {
        assert!(!matches(root, s).is_empty(), "{s} matches no file");
    }
    assert!(
        matches(root, "experiments/*.ron")
            .iter()
            .any(|p| p.ends_with("mnist_mlp.ron"))
    );
    let desktop = std::fs::read_to_string(root.join("assets/trainlab.desktop")).expect("entry");
    assert!(desktop.contains("\nExec=trainlab gui"), "{desktop}");
    assert!(desktop.contains("\nIcon=trainlab\n"), "{desktop}");
    // The icon the entry names, under the name the package installs it as.
    for icon in ["assets/icons/trainlab.svg", "assets/icons/trainlab.png"] {
        assert!(sources.iter().any(|s| s == icon), "{icon}");
    }
    let png = std::fs::read(root.join("assets/icons/trainlab.png")).expect("png");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
}
