//! `socks4d-* health [URL]`: a probe of a running server's metrics listener
//! (`/live` or `/ready`, [`crate::ops::metrics`]) for places that have no
//! HTTP client, such as the `HEALTHCHECK` of an image made of the binary
//! alone. It sends one `GET`, prints the status line and the body, and exits
//! 0 on a 200 and 1 on anything else (another status, no answer in time, no
//! server): the exit statuses a container health check expects.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

/// How long the probe waits to connect, and then for the whole answer.
pub(crate) const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest answer read (a probe's answer is one short line).
const MAX_ANSWER: u64 = 64 * 1024;

/// The `health` subcommand's arguments.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct HealthArgs {
    /// What to ask: http://HOST:PORT/PATH on the server's metrics listener
    /// (its --metrics-listen); /ready is 503 while draining or full, /live
    /// is 200 while the process runs
    #[arg(value_name = "URL", default_value = "http://127.0.0.1:9101/live")]
    pub(crate) url: String,
}

/// The `health` subcommand, for the server binaries' command line.
pub(crate) fn command() -> clap::Command {
    <HealthArgs as clap::Args>::augment_args(clap::Command::new("health")).about(format!(
        "Probe a running server's metrics listener (/live or /ready): exit 0 on 200, 1 otherwise ({} s timeouts)",
        HEALTH_TIMEOUT.as_secs()
    ))
}

/// Runs the `health` subcommand parsed from `args`; the process's exit status.
pub(crate) fn run_matches(args: &clap::ArgMatches) -> ExitCode {
    let args = match <HealthArgs as clap::FromArgMatches>::from_arg_matches(args) {
        Ok(args) => args,
        Err(e) => e.exit(),
    };
    match probe(&args.url) {
        Ok((status, body)) => {
            print!("{status}\n{body}");
            if status.split_whitespace().nth(1) == Some("200") {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("error: {}: {e}", args.url);
            ExitCode::from(1)
        }
    }
}

/// Splits `http://HOST:PORT/PATH` into the address and the path.
fn parse_url(url: &str) -> std::io::Result<(SocketAddr, String)> {
    let invalid = |why: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, why.to_owned());
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| invalid("expected http://HOST:PORT/PATH"))?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let addr = host
        .to_socket_addrs()
        .map_err(|_| invalid("expected http://HOST:PORT/PATH, e.g. http://127.0.0.1:9101/ready"))?
        .next()
        .ok_or_else(|| invalid("the host has no address"))?;
    let path = if path.is_empty() { "/" } else { path };
    Ok((addr, path.to_owned()))
}

/// Sends `GET` for `url`: the answer's status line and body.
fn probe(url: &str) -> std::io::Result<(String, String)> {
    let (addr, path) = parse_url(url)?;
    let mut stream = TcpStream::connect_timeout(&addr, HEALTH_TIMEOUT)?;
    stream.set_read_timeout(Some(HEALTH_TIMEOUT))?;
    stream.set_write_timeout(Some(HEALTH_TIMEOUT))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = Vec::new();
    stream.take(MAX_ANSWER).read_to_end(&mut answer)?;
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head.lines().next().unwrap_or_default();
    if !status.starts_with("HTTP/") {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not an HTTP answer",
        ));
    }
    Ok((status.to_owned(), body.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_split_into_address_and_path() {
        let (addr, path) = parse_url("http://127.0.0.1:9101/ready").unwrap();
        assert_eq!(addr, "127.0.0.1:9101".parse().unwrap());
        assert_eq!(path, "/ready");
        let (addr, path) = parse_url("http://[::1]:80").unwrap();
        assert_eq!(addr, "[::1]:80".parse().unwrap());
        assert_eq!(path, "/");
        assert!(parse_url("https://127.0.0.1:9101/ready").is_err());
        assert!(parse_url("http://127.0.0.1/ready").is_err());
    }
}
