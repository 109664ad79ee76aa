//! The config file: arbitrary text, parsed as the server parses its
//! `--config` file (TOML, every key and section, `[access] rules` with its
//! rules and routes), then resolved and checked as the file's layer (the
//! open-proxy and root checks, TLS paths, limits), never panics; settings
//! that load also print their `--check` report without a panic. (Resolved
//! as an embedder's layer rather than read from a file, so that a run costs
//! no file system calls; the file's own path differs only in where errors
//! point.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use socks4_daemon::config::check;
use socks4_daemon::{Options, Settings};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(options) = Options::from_toml(text) else {
        return;
    };
    if let Ok(settings) = Settings::from_options(options) {
        let report = check::report(&settings);
        assert!(report.text.contains("listeners:"));
    }
});
