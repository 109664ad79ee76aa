//! A redirect listener receiving the server's own outbound connection (an
//! nftables `redirect` of locally made connections, in a network namespace
//! the test makes and removes) refuses it as a loop at once: before, each
//! turn connected again, was redirected again, and took another slot until
//! every slot was full.

use socks4_tests::e2e::*;
use socks4_tests::netns::{Netns, Veth};

socks4_tests::on_every_adapter!(
    a_redirect_of_the_servers_own_connection_is_refused_as_a_loop,
    a_dnat_of_the_servers_own_connection_to_its_socks_listener_is_a_loop,
);

/// A network namespace with a veth pair of its own (10.99.0.1/24 on one
/// end, so that 10.99.0.0/24 has a route); removed on drop.
struct Ns {
    _veth: Veth,
    ns: Netns,
}

impl Ns {
    fn new(name: String) -> Ns {
        let ns = Netns::new(name);
        let veth = Veth::new("s4a", Some(&ns), "s4b", Some(&ns));
        ns.ip(&["addr", "add", "10.99.0.1/24", "dev", "s4a"]);
        Ns { _veth: veth, ns }
    }
}

/// The client, inside the namespace: a SOCKS4 CONNECT to 10.99.0.9:DPORT
/// through 127.0.0.1:PORT (`CONNECT PORT DPORT`); prints the reply code, or
/// `failed ERROR`.
const CONNECT: &str = r#"
import socket, struct, sys
try:
    c = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
    c.sendall(struct.pack(">BBH4s", 4, 1, int(sys.argv[2]), socket.inet_aton("10.99.0.9")) + b"\0")
    r = b""
    while len(r) < 8:
        d = c.recv(8 - len(r))
        if not d:
            break
        r += d
    print(r[1] if len(r) == 8 else "short")
except Exception as e:
    print("failed", type(e).__name__)
"#;

fn a_redirect_of_the_servers_own_connection_is_refused_as_a_loop(bin: &str) {
    // The server's own connections to port 9 go to its redirect listener.
    refused_once(
        bin,
        "redirect",
        9,
        ":15082",
        &["--redirect", "0.0.0.0:15082"],
    );
}

/// The server's own connection DNATed (an nftables `redirect`, which is a
/// DNAT to the machine) to its plain SOCKS listener: that listener's local
/// address is its own, not where the connection went, so the loop is known
/// by conntrack's original destination.
fn a_dnat_of_the_servers_own_connection_to_its_socks_listener_is_a_loop(bin: &str) {
    refused_once(bin, "dnat", 10, ":15080", &[]);
}

/// A server in a namespace of its own, with a SOCKS listener on
/// 127.0.0.1:15080 and `listeners`, whose own connections to port `dport`
/// of 10.99.0.0/24 nftables redirects `to`: a client's CONNECT there comes
/// back in once, is refused as a loop from the server's own address, and
/// goes round no more.
fn refused_once(bin: &str, name: &str, dport: u16, to: &str, listeners: &[&str]) {
    // One namespace per adapter's test (they run at once).
    let tag = bin.trim_start_matches("socks4d-").replace('-', "");
    let ns = Ns::new(format!("s4{name}{}{tag}", std::process::id()));
    let rules = format!(
        "table ip s4loop {{\n  chain out {{\n    type nat hook output priority -100; policy accept;\n    \
         ip daddr 10.99.0.0/24 tcp dport {dport} redirect to {to}\n  }}\n}}\n"
    );
    ns.ns.nft(&rules, "REDIRECT");
    let conf = rules_config(
        &format!("{name}-loop-{bin}"),
        "pass from 127.0.0.0/8 to any\npass from 10.99.0.0/24 to any",
    );
    let mut args = vec!["--listen", "127.0.0.1:15080"];
    args.extend_from_slice(listeners);
    args.extend(["--config", &conf, "--max-connections", "20", "--allow-root"]);
    let server = Server::start_in_netns(ns.ns.name(), bin, &args);
    let dport = dport.to_string();
    let (status, out, err) = run(
        ns.ns.exec("python3").args(["-c", CONNECT, "15080", &dport]),
        b"",
    );
    assert!(status.success(), "{bin}: {err}");
    let said = String::from_utf8_lossy(&out).trim().to_owned();
    // The server's own connection came back and was refused at once: the
    // outer request's connection ends (90 then a close, as the inner
    // connection closed, after its 91 on a SOCKS listener), or 91.
    assert!(
        said == "90" || said == "91",
        "{bin}: {said}\n{}",
        server.log()
    );
    let line = server.wait_for("the loop", |l| closed(l) && field(l, "outcome") == "loop");
    assert!(
        field(&line, "client").starts_with("10.99.0.1:"),
        "{bin}: the server's own address: {line}"
    );
    // One turn only: no connection went round again.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let turns = server.count(|l| says(l, "connection"));
    assert!(turns <= 3, "{bin}: {turns} connections\n{}", server.log());
}
