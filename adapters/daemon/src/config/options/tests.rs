//! The options' own tests: durations, layering, errors that name the place.

use super::*;
use std::time::Duration;

#[test]
fn durations_as_people_write_them() {
    for (text, ms) in [
        ("10", 10_000),
        ("2.5", 2_500),
        ("500ms", 500),
        ("2m", 120_000),
        ("1h", 3_600_000),
        ("1h 30m", 5_400_000),
        ("0", 0),
    ] {
        assert_eq!(
            text.parse::<Seconds>().unwrap().0,
            Duration::from_millis(ms),
            "{text}"
        );
    }
    for bad in ["-1", "ten", "10 parsecs", "inf", "NaN"] {
        assert!(bad.parse::<Seconds>().is_err(), "{bad}");
    }
    let o: Options =
        toml::from_str("[timeouts]\nhandshake = 2.5\nconnect = \"2m\"\nresolve = 3").unwrap();
    assert_eq!(
        o.timeouts.handshake,
        Some(Seconds(Duration::from_millis(2500)))
    );
    assert_eq!(o.timeouts.connect, Some(Seconds(Duration::from_secs(120))));
    assert_eq!(o.timeouts.resolve, Some(Seconds(Duration::from_secs(3))));
    let e = Options::from_toml("\n[timeouts]\nconnect = \"soon\"\n").unwrap_err();
    assert!(e.contains("line 3"), "{e}");
}

#[test]
fn upper_layers_win_and_access_lists_add_up() {
    let file: Options = toml::from_str(
        "listen = [\"127.0.0.1:2000\"]\nmax_connections = 5\n[access]\ndeny = [\"10.0.0.0/8\"]\n",
    )
    .unwrap();
    let cli = Options {
        max_connections: Some(7),
        access: AccessOptions {
            deny: Some(vec!["192.0.2.0/24".parse().unwrap()]),
            ..Default::default()
        },
        ..Default::default()
    };
    let all = Options::defaults().layered(&file).layered(&cli);
    assert_eq!(all.max_connections, Some(7));
    assert_eq!(all.listen.unwrap()[0].port(), 2000);
    assert_eq!(all.ident_port, Some(113));
    let deny: Vec<String> = all
        .access
        .deny
        .unwrap()
        .iter()
        .map(|n| n.0.to_string())
        .collect();
    assert_eq!(deny, ["10.0.0.0/8", "192.0.2.0/24"]);
}

#[test]
fn bad_values_in_the_file_name_line_and_column() {
    let e = Options::from_toml("[access]\ndeny = [\"10.0.0.0 255.0.255.0\"]\n").unwrap_err();
    assert!(e.contains("line 2") && e.contains("not a netmask"), "{e}");
    let e = Options::from_toml("lisen = []").unwrap_err();
    assert!(e.contains("unknown field"), "{e}");
}

#[test]
fn addresses_say_what_is_expected() {
    for (bad, hint) in [
        ("1080", "a port alone"),
        (":1080", "0.0.0.0:1080 and [::]:1080"),
        ("localhost:1080", "a host name"),
        ("::1:1080", "[::1]:1080"),
    ] {
        let e = parse_addr(bad).unwrap_err();
        assert!(
            e.contains("expected IP:PORT, e.g. 127.0.0.1:1080") && e.contains(hint),
            "{bad}: {e}"
        );
    }
    assert_eq!(parse_addr("[::1]:1080").unwrap().port(), 1080);
}

#[test]
fn one_string_is_a_list_of_one() {
    let o = Options::from_toml(
        "listen = \"127.0.0.1:1090\"\nmetrics_allow = \"10.0.0.0/8\"\noutgoing_address = \"192.0.2.1\"\n",
    )
    .unwrap();
    assert_eq!(o.listen.unwrap(), ["127.0.0.1:1090".parse().unwrap()]);
    assert_eq!(o.metrics_allow.unwrap().len(), 1);
    assert_eq!(o.outgoing_address.unwrap().len(), 1);
    let o = Options::from_toml("listen = [\"127.0.0.1:1090\", \"[::1]:1090\"]\n").unwrap();
    assert_eq!(o.listen.unwrap().len(), 2);
    let e = Options::from_toml("listen = \"1090\"\n").unwrap_err();
    assert!(e.contains("line 1") && e.contains("a port alone"), "{e}");
    // The layers still merge (they go through JSON).
    let all =
        Options::defaults().layered(&Options::from_toml("listen = \"127.0.0.1:1\"\n").unwrap());
    assert_eq!(all.listen.unwrap().len(), 1);
}
