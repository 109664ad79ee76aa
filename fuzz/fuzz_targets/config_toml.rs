//! The config file: arbitrary text, read as the server reads its `--config`
//! file (TOML, every key and section, `[access] rules` with its rules and
//! routes, the open-proxy and root checks), never panics; settings that load
//! also print their `--check` report without a panic. The text is written to
//! a file of this process's own, as the server only reads config files.
#![no_main]

use libfuzzer_sys::fuzz_target;
use socks4_daemon::config::check;
use socks4_daemon::config::settings::Sources;
use socks4_daemon::{Options, Settings};
use std::path::PathBuf;
use std::sync::OnceLock;

fn file() -> &'static PathBuf {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("socks4-fuzz-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch folder");
        dir.join("socks4d.toml")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The parser on its own, then the whole load.
    let parsed = Options::from_toml(text);
    std::fs::write(file(), text).expect("the scratch file is writable");
    let loaded = Settings::load(Sources {
        config: Some(file().clone()),
        ..Sources::default()
    });
    if parsed.is_err() {
        assert!(loaded.is_err(), "a file that does not parse loaded");
    }
    if let Ok(settings) = loaded {
        let report = check::report(&settings);
        assert!(report.text.contains("listeners:"));
    }
});
