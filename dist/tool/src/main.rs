//! `socks4-dist`: writes what the server binaries ship with besides
//! themselves, generated from their clap definitions
//! ([`socks4_daemon::command`]), so that nothing of it is written by hand and
//! none of it can drift from `--help`:
//!
//! ```sh
//! cargo run -p socks4-dist -- man DIR           # DIR/man8/socks4d-tokio.8, socks4d-tokio-ctl.8, ...
//! cargo run -p socks4-dist -- completions DIR   # DIR/bash/socks4d-tokio, DIR/zsh/_socks4d-tokio, DIR/fish/...
//! ```
//!
//! `dist/debian/build` runs both for the Debian package, whose cargo-deb
//! metadata is this crate's (`[package.metadata.deb]` in its manifest).

use clap::{Parser, Subcommand};
use clap_complete::Shell;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The server binaries, one per runtime.
const SERVERS: [&str; 3] = ["socks4d-tokio", "socks4d-smol", "socks4d-async-std"];

/// The manual section of the pages: system administration and daemons.
const SECTION: &str = "8";

/// The file name a shell's completion directory expects for a command.
type FileName = fn(&str) -> String;

/// Writes one kind of file for one binary under a folder; the paths written.
type Writer = fn(&Path, &str) -> std::io::Result<Vec<PathBuf>>;

/// The shells completions are written for: each one's folder and file name.
const SHELLS: [(Shell, &str, FileName); 3] = [
    (Shell::Bash, "bash", |name| name.to_owned()),
    (Shell::Zsh, "zsh", |name| format!("_{name}")),
    (Shell::Fish, "fish", |name| format!("{name}.fish")),
];

/// Writes the man pages or the shell completions of the socks4 servers,
/// generated from their command-line definitions.
#[derive(Debug, Parser)]
#[command(name = "socks4-dist")]
struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, Subcommand)]
enum What {
    /// Man pages (section 8): DIR/man8/NAME.8 for each server, and
    /// NAME-SUBCOMMAND.8 for each of its subcommands (ctl, health)
    Man {
        /// Where to write them (created if missing)
        dir: PathBuf,
        /// Only these binaries (default: the three servers)
        #[arg(long = "bin", value_name = "NAME")]
        bins: Vec<String>,
    },
    /// Shell completions: DIR/bash/NAME, DIR/zsh/_NAME and DIR/fish/NAME.fish
    /// for each server
    Completions {
        /// Where to write them (created if missing)
        dir: PathBuf,
        /// Only these binaries (default: the three servers)
        #[arg(long = "bin", value_name = "NAME")]
        bins: Vec<String>,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    let (dir, bins, write): (_, _, Writer) = match args.what {
        What::Man { dir, bins } => (dir, bins, man_pages),
        What::Completions { dir, bins } => (dir, bins, completions),
    };
    let bins = if bins.is_empty() {
        SERVERS.map(str::to_owned).to_vec()
    } else {
        bins
    };
    for bin in &bins {
        match write(&dir, bin) {
            Ok(files) => {
                for file in files {
                    println!("{}", file.display());
                }
            }
            Err(e) => {
                eprintln!("socks4-dist: {}: {e}", dir.display());
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

/// Writes the man pages of the binary `name` under `dir/man8`: one for the
/// server and one per subcommand. The paths written.
fn man_pages(dir: &Path, name: &str) -> std::io::Result<Vec<PathBuf>> {
    let dir = dir.join(format!("man{SECTION}"));
    std::fs::create_dir_all(&dir)?;
    let mut cmd = socks4_daemon::command(name).disable_help_subcommand(true);
    // Builds the subcommands' display names (`socks4d-tokio-ctl`).
    cmd.build();
    let mut pages = vec![cmd.clone()];
    pages.extend(cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    let mut written = Vec::new();
    for page in pages {
        let man = clap_mangen::Man::new(page)
            .section(SECTION)
            .source(format!("socks4 {}", env!("CARGO_PKG_VERSION")))
            .manual("socks4 manual");
        written.push(man.generate_to(&dir)?);
    }
    Ok(written)
}

/// Writes the completions of the binary `name` for every shell under `dir`.
/// The paths written.
fn completions(dir: &Path, name: &str) -> std::io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (shell, folder, file_name) in SHELLS {
        let folder = dir.join(folder);
        std::fs::create_dir_all(&folder)?;
        let path = folder.join(file_name(name));
        let mut out = BufWriter::new(File::create(&path)?);
        let mut cmd = socks4_daemon::command(name);
        clap_complete::generate(shell, &mut cmd, name, &mut out);
        out.flush()?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(what: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("socks4-dist-{what}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn man_pages_describe_the_options_the_subcommands_and_the_config_keys() {
        let dir = scratch("man");
        let written = man_pages(&dir, "socks4d-tokio").unwrap();
        let names: Vec<_> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "socks4d-tokio.8",
                "socks4d-tokio-ctl.8",
                "socks4d-tokio-health.8"
            ]
        );
        let page = std::fs::read_to_string(dir.join("man8/socks4d-tokio.8")).unwrap();
        assert!(page.starts_with(".ie"), "{page}");
        assert!(page.contains(".TH socks4d-tokio 8"), "{page}");
        assert!(page.contains("max\\-connections"), "{page}");
        assert!(page.contains("(config: max_connections)"), "{page}");
        assert!(page.contains("socks4d\\-tokio\\-ctl(8)"), "{page}");
        let ctl = std::fs::read_to_string(dir.join("man8/socks4d-tokio-ctl.8")).unwrap();
        assert!(ctl.contains("\\-\\-socket"), "{ctl}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn completions_know_the_flags_and_the_subcommands() {
        let dir = scratch("completions");
        let written = completions(&dir, "socks4d-smol").unwrap();
        assert_eq!(written.len(), 3);
        for path in [
            "bash/socks4d-smol",
            "zsh/_socks4d-smol",
            "fish/socks4d-smol.fish",
        ] {
            let text = std::fs::read_to_string(dir.join(path)).unwrap();
            assert!(text.contains("max-connections"), "{path}: {text}");
            assert!(text.contains("ctl") && text.contains("health"), "{path}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
