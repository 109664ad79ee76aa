//! Parses a policy and explains how it decides a request: which list or rule,
//! on which line, and with what options.
//!
//! ```sh
//! cargo run -p socks4-acl --example explain -- policy.rules 192.168.1.5 93.184.216.34:443 alice
//! ```
//! With no arguments it explains a built-in example.

use socks4_acl::{Command, Policy, Source, Subject};

const EXAMPLE: &str = "\
deny 10.66.0.0/16
block from any to any port eq 25 log
pass  from 192.168.0.0/16 to any port gt 1023 user alice,bob
pass  from 192.168.0.0/16 to .example.com
";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let text = match args.first() {
        Some(path) => std::fs::read_to_string(path)?,
        None => EXAMPLE.to_owned(),
    };
    let policy: Policy = text.parse()?; // errors name the line and column
    let client = args.get(1).map_or("192.168.1.5", String::as_str);
    let dest: std::net::SocketAddr = args
        .get(2)
        .map_or("93.184.216.34:443", String::as_str)
        .parse()?;
    let user = args.get(3).map_or("alice", String::as_str);
    let subject = Subject {
        client: std::net::SocketAddr::new(client.parse()?, 40000),
        dest_addr: Some(dest.ip()),
        dest_host: None,
        dest_port: dest.port(),
        command: Command::Connect,
        user_id: user.as_bytes(),
        cert: None,
    };
    let verdict = policy.evaluate(&subject);
    let decision = if verdict.is_pass() { "pass" } else { "block" };
    println!(
        "{client} -> {dest} as {user:?}: {decision}, decided by {}",
        verdict.source
    );
    if let Source::Rule { number, .. } = verdict.source {
        println!("  rule {number}: {}", policy.rules.rules()[number - 1]);
    }
    for (shadowed, by) in policy.rules.shadowed() {
        println!("  note: rule {shadowed} can never match (rule {by} matches all it does)");
    }
    Ok(())
}
