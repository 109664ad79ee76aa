//! The control socket's requests: arbitrary bytes as one request line never
//! panic, and every answer is one JSON object saying `ok` with an `output`,
//! or not with an `error`. The daemon is a fresh one with the default
//! settings for each input, so that list changes do not pile up across
//! inputs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use socks4_daemon::{control_answer, Daemon, Options, Settings};
use std::sync::OnceLock;

fn settings() -> &'static Settings {
    static SETTINGS: OnceLock<Settings> = OnceLock::new();
    SETTINGS.get_or_init(|| Settings::from_options(Options::default()).expect("the defaults load"))
}

fuzz_target!(|data: &[u8]| {
    let daemon = Daemon::new(settings().clone());
    // A request, and the same again: list edits answer the second time too.
    for _ in 0..2 {
        let answer = control_answer(&daemon, data);
        assert!(!answer.contains('\n'), "one line: {answer}");
        let v: serde_json::Value = serde_json::from_str(&answer).expect("the answer is JSON");
        match v["ok"].as_bool() {
            Some(true) => assert!(v["output"].is_string(), "{answer}"),
            Some(false) => assert!(v["error"].is_string(), "{answer}"),
            None => panic!("no ok in {answer}"),
        }
    }
});
