//! Errors that say what to do, on every adapter: a listen address without
//! its IP answers "expected IP:PORT, e.g. 127.0.0.1:1080" (on the command
//! line and in the file); `listen = "ADDR"` is a list of one; a key written
//! in the wrong section names the one it belongs in; a path given on the
//! command line is relative to the current folder, one in the file to the
//! file's. (Ports below 1024, switching users and the rest of the start's
//! checks: `preflight.rs`.)

use socks4_tests::e2e::*;
use std::process::Command as Process;

socks4_tests::on_every_adapter!(
    a_listen_address_without_its_ip_says_what_is_expected,
    listen_as_one_string_is_a_list_of_one,
    a_key_in_the_wrong_section_names_its_own,
    command_line_paths_are_relative_to_the_current_folder,
);

const EXPECTED: &str = "expected IP:PORT, e.g. 127.0.0.1:1080";

fn a_listen_address_without_its_ip_says_what_is_expected(bin: &str) {
    for bad in ["1080", ":1080", "localhost:1080"] {
        let (status, out, err) = run_binary(bin, &["--listen", bad, "--check"]);
        assert_eq!(status.code(), Some(2), "{bin} {bad}: {out}\n{err}");
        assert!(err.contains(EXPECTED), "{bin} {bad}: {err}");
    }
    let dir = socks4_tests::scratch::dir(&format!("hints-listen-{bin}"));
    let conf = dir.join("socks4d.toml");
    std::fs::write(&conf, "listen = [\"localhost:1080\"]\n").unwrap();
    let (status, _, err) = run_binary(bin, &["--config", conf.to_str().unwrap(), "--check"]);
    assert_eq!(status.code(), Some(2), "{bin}: {err}");
    assert!(
        err.contains(EXPECTED) && err.contains("line 1"),
        "{bin}: {err}"
    );
}

fn listen_as_one_string_is_a_list_of_one(bin: &str) {
    let dir = socks4_tests::scratch::dir(&format!("hints-one-{bin}"));
    let conf = dir.join("socks4d.toml");
    std::fs::write(&conf, "listen = \"127.0.0.1:0\"\n").unwrap();
    let server = Server::start_with(bin, &["--config", conf.to_str().unwrap()]);
    let c = socks_request(server.addr, &connect_to(echo(1), b""), |_| {});
    assert!(granted(&c), "{bin}: {:?}\n{}", c.events, server.log());
}

fn a_key_in_the_wrong_section_names_its_own(bin: &str) {
    let dir = socks4_tests::scratch::dir(&format!("hints-section-{bin}"));
    let conf = dir.join("socks4d.toml");
    for (text, home) in [
        (
            "[access]\nmax_connections_per_client = 3\n",
            "`max_connections_per_client` belongs under [limits]",
        ),
        (
            "[limits]\nlisten = [\"127.0.0.1:1080\"]\n",
            "`listen` belongs at the top of the file, before any [section]",
        ),
    ] {
        std::fs::write(&conf, text).unwrap();
        let (status, _, err) = run_binary(bin, &["--config", conf.to_str().unwrap(), "--check"]);
        assert_eq!(status.code(), Some(2), "{bin}: {err}");
        assert!(err.contains(home), "{bin}: {err}");
    }
}

fn command_line_paths_are_relative_to_the_current_folder(bin: &str) {
    // The config file in one folder, the server started in another: the
    // file's rules file is found beside the file, the command line's in the
    // current folder.
    let dir = socks4_tests::scratch::fresh(&format!("hints-paths-{bin}"));
    let conf_dir = dir.join("etc");
    let here = dir.join("here");
    std::fs::create_dir_all(&conf_dir).unwrap();
    std::fs::create_dir_all(&here).unwrap();
    std::fs::write(
        conf_dir.join("socks4d.toml"),
        "[access]\nrules_file = [\"file.rules\"]\n",
    )
    .unwrap();
    std::fs::write(
        conf_dir.join("file.rules"),
        "pass from 10.1.0.0/16 to any\n",
    )
    .unwrap();
    std::fs::write(here.join("cli.rules"), "pass from 10.2.0.0/16 to any\n").unwrap();
    let (status, out, err) = run(
        Process::new(server_binary(bin)).current_dir(&here).args([
            "--config",
            "../etc/socks4d.toml",
            "--rules",
            "cli.rules",
            "--check",
        ]),
        b"",
    );
    let out = String::from_utf8_lossy(&out);
    assert!(status.success(), "{bin}: {out}\n{err}");
    assert!(
        out.contains("pass from 10.1.0.0/16 to any")
            && out.contains("pass from 10.2.0.0/16 to any"),
        "{bin}: {out}"
    );
}
