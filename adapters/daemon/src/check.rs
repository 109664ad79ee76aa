//! `--check`: what a server would run with, printed for a person.

use crate::settings::Settings;
use std::fmt::Write;

/// The resolved listeners and access policy.
pub fn report(settings: &Settings) -> String {
    let mut out = String::new();
    let listen: Vec<String> = settings.listen.iter().map(|a| a.to_string()).collect();
    let _ = writeln!(out, "listen: {}", listen.join(", "));
    let _ = write!(out, "{}", settings.server.policy);
    out
}
