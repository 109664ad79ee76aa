//! The settings' tests: layers, defaults, the secure default and the errors
//! that explain a bad value.

use super::*;
use std::net::SocketAddr;
use std::time::Duration;

/// A config file in a directory of its own, removed when dropped.
struct ConfigFile(std::path::PathBuf);

impl ConfigFile {
    fn new(text: &str) -> ConfigFile {
        let dir = std::env::temp_dir().join(format!(
            "socks4-settings-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("socks4d.toml"), text).unwrap();
        ConfigFile(dir)
    }

    fn load(&self, args: &[&str]) -> Result<Settings, ConfigError> {
        let path = self.0.join("socks4d.toml");
        let mut all = vec!["--config".to_owned(), path.display().to_string()];
        all.extend(args.iter().map(|a| a.to_string()));
        Settings::from_args(all)
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn with_file(args: &[&str], file: &str) -> Result<Settings, ConfigError> {
    ConfigFile::new(file).load(args)
}

#[test]
fn defaults_are_loopback_and_secure() {
    let s = Settings::from_args::<_, &str>([]).unwrap();
    assert_eq!(
        s.listen,
        vec!["127.0.0.1:1080".parse::<SocketAddr>().unwrap()]
    );
    assert!(s.server.policy.only_loopback_clients());
    assert_eq!(s.server.ident, socks4_proto::server::IdentMode::Off);
    assert_eq!(s.max_connections, 1024);
    assert_eq!(s.log_level, LogLevel::Info);
    assert_eq!(s.shutdown_grace, Duration::from_secs(30));
}

#[test]
fn public_listen_without_a_rule_for_outside_clients_is_refused_with_a_way_out() {
    let e = Settings::from_args(["--listen", "0.0.0.0:1080"]).unwrap_err();
    assert!(
        e.message.contains("refusing to listen on 0.0.0.0:1080"),
        "{e}"
    );
    assert!(e.message.contains("--allow"), "{e}");
    let e =
        Settings::from_args(["--listen", "0.0.0.0:1080", "--allow", "127.0.0.0/8"]).unwrap_err();
    assert!(
        e.message
            .contains("no access rule passes a client from outside loopback"),
        "{e}"
    );
    assert!(Settings::from_args(["--listen", "0.0.0.0:1080", "--allow", "192.168.0.0/16"]).is_ok());
    let file = "listen = [\"[::]:1080\"]\n[access]\nrules = \"pass from 10.0.0.0/8 to any\"\n";
    assert!(with_file(&[], file).is_ok());
}

#[test]
fn cli_wins_over_the_file() {
    let file = r#"
        listen = ["127.0.0.1:2000"]
        ident = "log"
        max_connections = 5
        log_level = "warn"
        [timeouts]
        handshake = 2.5
        connect = 7
        [limits]
        max_user_id = 16
    "#;
    // Kept until the reload below has read it again.
    let config = ConfigFile::new(file);
    let s = config
        .load(&["--ident", "require", "--connect-timeout", "3s", "-v"])
        .unwrap();
    assert_eq!(s.listen[0].port(), 2000);
    assert_eq!(s.server.ident, socks4_proto::server::IdentMode::Require);
    assert_eq!(s.max_connections, 5);
    assert_eq!(s.server.timeouts.handshake, Duration::from_millis(2500));
    assert_eq!(s.server.timeouts.connect, Duration::from_secs(3));
    assert_eq!(s.server.limits.max_user_id, 16);
    assert_eq!(s.log_level, LogLevel::Info);
    // A reload reads the file again and lays the same command line on top.
    let again = s.reload().unwrap();
    assert_eq!(again.server.ident, socks4_proto::server::IdentMode::Require);
    assert_eq!(again.server.timeouts.connect, Duration::from_secs(3));
    assert_eq!(again.max_connections, 5);
}

#[test]
fn bad_values_are_explained() {
    for (args, file, needle) in [
        (
            &["--listen", "localhost:1080"][..],
            "",
            "invalid value 'localhost:1080'",
        ),
        (&[][..], "ident = \"maybe\"", "line 1"),
        (&[][..], "[timeouts]\nconnect = -1", "line 2"),
        (&[][..], "[timeouts]\nconnect = 0", "must be more than zero"),
        (
            &[][..],
            "[access]\nrules = \"pass frm any\"",
            "[access] rules: line 2, column 15",
        ),
        (
            &[][..],
            "\n[access]\nrules = \"\"\"\npass from any\npass frm any\n\"\"\"\n",
            "[access] rules: line 5, column 6",
        ),
        (
            &[][..],
            "[access]\ndeny = [\"10.0.0.0 255.0.255.0\"]",
            "not a netmask",
        ),
        (&[][..], "log_format = \"xml\"", "line 1"),
        (&[][..], "lisen = []", "unknown field"),
        (&["--deny", "10.0.0.0/33"][..], "", "--deny"),
    ] {
        let e = with_file(args, file).unwrap_err();
        assert!(e.message.contains(needle), "{args:?} {file:?}: {e}");
    }
}

#[test]
fn tls_and_dual_settings_are_checked() {
    use crate::config::listeners::ListenerKind;
    // Another kind of listener replaces the default SOCKS one; naming
    // `listen` keeps it.
    let s = Settings::from_args(["--forward", "127.0.0.1:2222=127.0.0.1:22"]).unwrap();
    assert!(s.listen.is_empty());
    assert_eq!(s.listeners.len(), 1);
    let s = Settings::from_args([
        "--listen",
        "127.0.0.1:1080",
        "--forward",
        "127.0.0.1:2222=127.0.0.1:22",
    ])
    .unwrap();
    assert_eq!(s.listeners[0].kind, ListenerKind::Socks);
    // A TLS listener needs a certificate; files that are not there are
    // named.
    let e = Settings::from_args(["--listen-tls", "127.0.0.1:1443"]).unwrap_err();
    assert!(e.message.contains("--tls-cert FILE --tls-key FILE"), "{e}");
    let e = Settings::from_args([
        "--listen-tls",
        "127.0.0.1:1443",
        "--tls-cert",
        "/nonexistent/cert.pem",
        "--tls-key",
        "/nonexistent/key.pem",
    ])
    .unwrap_err();
    assert!(e.message.contains("/nonexistent/cert.pem"), "{e}");
    let e = Settings::from_args(["--tls-cert", "/nonexistent/cert.pem"]).unwrap_err();
    assert!(e.message.contains("go together"), "{e}");
    // The dual timeout must end before the handshake timeout.
    let e = Settings::from_args([
        "--dual",
        "127.0.0.1:443=127.0.0.1:22",
        "--dual-timeout",
        "10s",
    ])
    .unwrap_err();
    assert!(e.message.contains("must be shorter"), "{e}");
    let s = Settings::from_args(["--dual", "127.0.0.1:443=127.0.0.1:22"]).unwrap();
    assert_eq!(s.dual_timeout, Duration::from_secs(2));
    assert!(matches!(s.listeners[0].kind, ListenerKind::Dual(_)));
}

#[test]
fn lists_alone_keep_the_loopback_default_rules() {
    let s = Settings::from_args(["--deny", "127.0.0.2"]).unwrap();
    assert!(s.server.policy.only_loopback_clients());
    assert!(s.server.policy.denied("127.0.0.2".parse().unwrap()));
    assert!(!s.server.policy.denied("127.0.0.1".parse().unwrap()));
}

#[test]
fn a_group_without_a_user_is_an_error() {
    let e = Settings::from_args(["--group", "nogroup"]).unwrap_err();
    assert!(
        e.message.contains("needs user") && e.message.contains("--user NAME --group nogroup"),
        "{e}"
    );
    let e = with_file(&[], "group = \"nogroup\"\n").unwrap_err();
    assert!(e.message.contains("needs user"), "{e}");
}

#[test]
fn sniffing_settings_are_checked() {
    use crate::config::listeners::ListenerKind;
    use crate::config::options::SniffTarget;
    let redirect: SocketAddr = "127.0.0.1:1082".parse().unwrap();
    let forward: SocketAddr = "127.0.0.1:2222".parse().unwrap();
    let args = [
        "--redirect",
        "127.0.0.1:1082",
        "--forward",
        "127.0.0.1:2222=127.0.0.1:22",
    ];
    // By default transparent and redirect listeners sniff, to the address,
    // for 300 ms and 16 KiB.
    let s = Settings::from_args(args).unwrap();
    let sn = &s.sniffing;
    assert_eq!(
        sn.for_listener(&ListenerKind::Redirect, redirect),
        Some(SniffTarget::Address)
    );
    let fwd = s.listeners.iter().find(|l| l.addr == forward).unwrap();
    assert_eq!(sn.for_listener(&fwd.kind, forward), None);
    assert_eq!((sn.timeout, sn.max), (Duration::from_millis(300), 16384));
    // Per listener, in the file; `none` turns it off.
    let file = "sniff = [\"forward\", \"redirect\"]\n[sniff_target_listeners]\n\"127.0.0.1:2222\" = \"name\"\n";
    let s = with_file(&args, file).unwrap();
    let fwd = s.listeners.iter().find(|l| l.addr == forward).unwrap();
    assert_eq!(
        s.sniffing.for_listener(&fwd.kind, forward),
        Some(SniffTarget::Name)
    );
    let mut none = args.to_vec();
    none.extend(["--sniff", "none"]);
    let s = Settings::from_args(none).unwrap();
    assert_eq!(
        s.sniffing.for_listener(&ListenerKind::Redirect, redirect),
        None
    );
    // A table entry for a listener that does not sniff, or no listener; a
    // zero timeout; `none` among kinds.
    for (file, says) in [
        (
            "[sniff_target_listeners]\n\"127.0.0.1:2222\" = \"name\"\n",
            "does not sniff",
        ),
        (
            "[sniff_target_listeners]\n\"127.0.0.1:9\" = \"name\"\n",
            "not one of the listeners",
        ),
        ("[timeouts]\nsniff = 0\n", "more than zero"),
        ("sniff = [\"none\", \"redirect\"]\n", "cannot go with"),
    ] {
        let e = with_file(&args, file).unwrap_err();
        assert!(e.message.contains(says), "{file}: {e}");
    }
}
