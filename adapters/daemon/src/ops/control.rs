//! The control socket (`--control-socket PATH`): a Unix socket, mode 0600, over
//! which the `ctl` subcommand ([`crate::ops::ctl`]) changes the run-time denial and
//! exemption lists (the POE SOCKS server's `add_denial`, `del_denial`,
//! `denied`, `add_exemption`, `del_exemption`, `exempted`), explains decisions,
//! reloads, and reads the counters and the client table.
//!
//! One request per connection: a JSON array of words, one line; one answer: a
//! JSON object, `{"ok": true, "output": "..."}` or `{"ok": false, "error":
//! "..."}`. Served on a thread of its own, one request at a time (requests are
//! rare and cheap), each bounded in size and in time (`[timeouts] control` for
//! the whole request and for the answer, however slowly a client trickles
//! it). When accepting fails (EMFILE, say), the thread pauses, doubling the
//! pause up to a second, rather than spin.
//!
//! It also lists the open connections and ends them (`conns`, `kill`:
//! [`crate::ops::conns_ctl`]), and starts a binary upgrade (`upgrade
//! [--binary PATH]`: [`crate::ops::upgrade`]; the request's thread waits for
//! the new process, and once it handed the socket over it stops serving it). Changes apply to new connections at once and
//! are logged with who asked (the peer's uid, `SO_PEERCRED`). List entries
//! added here are run-time entries ([`crate::daemon::runtime_lists`]): a
//! reload lays them over the config file's lists again, the state file keeps
//! them across restarts, and they may expire. Every command answers JSON
//! when the request holds the word `--json`.

use crate::daemon::runtime_lists::{Addition, ListKind};
use crate::daemon::Daemon;
use serde_json::json;
use socks4_acl::{Command, Netmask, Subject};
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

/// The longest request accepted, in bytes.
const MAX_REQUEST: u64 = 64 * 1024;

/// The words `ctl` understands, for its help and for errors.
pub(crate) const USAGE: &str =
    "conns [FILTER] [--sort bytes|age] | kill ID|FILTER | deny add NET [for DURATION] [reason TEXT] | deny del NET | \
deny list | exempt add NET [for DURATION] [reason TEXT] | exempt del NET | exempt list | check IP [to IP:PORT] [user USER] [cert NAME] [command connect|bind] (the lists, the deciding rule, the route) | reload | stats | clients | \
parents | resolve NAME | cache flush [NAME] | upgrade [--binary PATH] | fleet; a FILTER is pairs of: client NET, user U, \
cert NAME, dest NET|NAME|.DOMAIN, listener ADDR, older-than DURATION; --json: the output as JSON";

/// Creates the control socket at `path`, readable and writable by its owner
/// only (the umask while binding makes it 0600 from the moment it exists:
/// no chmod by path, which could follow a link put there meanwhile). A
/// socket left by a server that is gone is replaced; one that answers
/// (another server) is an error, and so is anything at the path that is not
/// a socket (a symbolic link, a regular file): never followed, never
/// removed.
pub(crate) fn bind(path: &Path) -> io::Result<UnixListener> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        if !meta.file_type().is_socket() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} is there and is not a socket: refusing to follow or replace it",
                    path.display()
                ),
            ));
        }
        if UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("{}: another server answers on it", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    // Nobody but the owner may connect, from the moment the socket exists.
    let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o177));
    let bound = UnixListener::bind(path);
    rustix::process::umask(old);
    bound
}

/// Removes the control socket at exit, if the path still names a socket.
#[cfg(feature = "cli")]
pub(crate) fn remove(path: &Path) {
    use std::os::unix::fs::FileTypeExt;
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
        let _ = std::fs::remove_file(path);
    }
}

/// Serves the control socket on a thread of its own; `now` is the runtime's
/// clock (request deadlines are measured on it).
pub(crate) fn serve(
    listener: UnixListener,
    daemon: Daemon,
    now: impl Fn() -> Instant + Send + 'static,
) -> io::Result<()> {
    let timeout = daemon.settings().control_timeout;
    // Shared with a new process after a binary upgrade: this thread looks
    // every moment whether it handed the socket over, and then stops.
    listener.set_nonblocking(true)?;
    std::thread::Builder::new()
        .name("control".into())
        .spawn(move || {
            let mut backoff = ACCEPT_BACKOFF.0;
            loop {
                if daemon.upgrade().handed_over() {
                    return;
                }
                let mut ready = [rustix::event::PollFd::new(&listener, rustix::event::PollFlags::IN)];
                let wait = rustix::event::Timespec { tv_sec: 0, tv_nsec: HANDOVER_LOOK.as_nanos() as i64 };
                if !matches!(rustix::event::poll(&mut ready, Some(&wait)), Ok(n) if n > 0) {
                    continue;
                }
                let stream = match listener.accept() {
                    Ok((stream, _)) => stream,
                    // Another process (an upgrade's) took it first.
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => {
                        tracing::warn!(target: "socks4d", error = %e, ?backoff, "control socket: accept failed");
                        std::thread::sleep(backoff);
                        backoff = (backoff * 2).min(ACCEPT_BACKOFF.1);
                        continue;
                    }
                };
                backoff = ACCEPT_BACKOFF.0;
                if stream.set_nonblocking(false).is_err() {
                    continue;
                }
                respond(&daemon, stream, (timeout, &now));
            }
        })?;
    Ok(())
}

/// How often the control thread looks whether an upgrade handed its socket
/// over, while nobody connects.
const HANDOVER_LOOK: Duration = Duration::from_millis(200);

/// Shortest and longest pause after a failed accept, doubling in between.
const ACCEPT_BACKOFF: (Duration, Duration) = (Duration::from_millis(5), Duration::from_secs(1));

/// Reads one request within `timeout` (all of it, however it trickles in),
/// answers it and writes the answer within `timeout`.
fn respond(daemon: &Daemon, stream: UnixStream, (timeout, now): (Duration, &dyn Fn() -> Instant)) {
    let deadline = now() + timeout;
    // Who asks, for the log lines of what they change.
    let who = rustix::net::sockopt::socket_peercred(&stream).map_or_else(
        |_| "control socket".to_owned(),
        |cred| format!("uid {}", cred.uid.as_raw()),
    );
    let reply = match read_request(&stream, deadline, now) {
        Ok(line) => answer_as(daemon, &line, &who),
        Err(error) => json!({"ok": false, "error": error}).to_string(),
    };
    let mut stream = stream;
    let _ = stream.set_write_timeout(Some(timeout));
    let _ = writeln!(stream, "{reply}");
    // An upgrade's answer is out: only now may this server stop (one with
    // nothing to drain exits at once).
    crate::ops::upgrade::drain_after_handover(daemon);
}

/// One line from `stream` (without its newline), at most [`MAX_REQUEST`]
/// bytes, before `deadline`.
fn read_request(
    stream: &UnixStream,
    deadline: Instant,
    now: &dyn Fn() -> Instant,
) -> Result<Vec<u8>, String> {
    let mut line = Vec::new();
    let mut buf = [0u8; 4096];
    while !line.contains(&b'\n') && (line.len() as u64) < MAX_REQUEST {
        let left = deadline.saturating_duration_since(now());
        if left.is_zero() {
            return Err("reading the request: timed out".into());
        }
        let _ = stream.set_read_timeout(Some(left));
        match (&*stream).read(&mut buf) {
            Ok(0) => break,
            Ok(n) => line.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("reading the request: {e}")),
        }
    }
    let end = line.iter().position(|b| *b == b'\n').unwrap_or(line.len());
    line.truncate(end.min(MAX_REQUEST as usize));
    Ok(line)
}

/// Answers one control-socket request line (a JSON array of words) as the
/// socket does: the answer's JSON object, without its newline. For a
/// program that carries the control protocol over a transport of its own,
/// and for the fuzz target that feeds it arbitrary bytes.
pub fn answer(daemon: &Daemon, request: &[u8]) -> String {
    let answer = answer_as(daemon, request, "control socket");
    crate::ops::upgrade::drain_after_handover(daemon);
    answer
}

/// [`answer`], for a request from `who` (named in the log lines of what it
/// changes).
fn answer_as(daemon: &Daemon, request: &[u8], who: &str) -> String {
    let answer = serde_json::from_slice::<Vec<String>>(request)
        .map_err(|e| format!("a request is a JSON array of words: {e}"))
        .and_then(|words| run(daemon, &words, who));
    match answer {
        Ok(output) => json!({"ok": true, "output": output}),
        Err(error) => json!({"ok": false, "error": error}),
    }
    .to_string()
}

/// Runs one request from `who`; the output for the client, or why it
/// failed. A word `--json` anywhere asks for the output as JSON.
pub(crate) fn run(daemon: &Daemon, words: &[String], who: &str) -> Result<String, String> {
    let json = words.iter().any(|w| w == "--json");
    let w: Vec<&str> = words
        .iter()
        .map(String::as_str)
        .filter(|w| *w != "--json")
        .collect();
    match w.as_slice() {
        ["conns", filter @ ..] => crate::ops::conns_ctl::conns(daemon, filter, json),
        ["kill", what @ ..] => crate::ops::conns_ctl::kill(daemon, what, who, json),
        [kind @ ("deny" | "exempt"), op @ ("add" | "del"), rest @ ..] => {
            edit(daemon, list_kind(kind), *op == "add", rest, (who, json))
        }
        [kind @ ("deny" | "exempt"), "list"] => Ok(list(daemon, list_kind(kind), json)),
        ["check", ip, rest @ ..] => check(daemon, ip, rest, json),
        ["reload"] => match daemon.reload_report() {
            Ok(restart) => {
                tracing::info!(target: "socks4d", "configuration reloaded (control socket)");
                Ok(match (json, restart.is_empty()) {
                    (true, _) => {
                        format!("{}\n", json!({"reloaded": true, "restart_needed": restart}))
                    }
                    (false, true) => "configuration reloaded\n".to_owned(),
                    (false, false) => format!(
                        "configuration reloaded; restart needed for: {}\n",
                        restart.join(", ")
                    ),
                })
            }
            Err(e) => {
                tracing::error!(target: "socks4d", error = %e, "reload failed, keeping the old configuration (control socket)");
                Err(format!("reload failed, the old configuration stays: {e}"))
            }
        },
        ["upgrade", rest @ ..] => upgrade(daemon, rest, (who, json)),
        ["stats"] => Ok(stats(daemon)),
        ["fleet"] => crate::ops::fleet_ctl::fleet(daemon, json),
        ["clients"] => Ok(clients(daemon, json)),
        [cmd @ ("parents" | "resolve" | "cache"), rest @ ..] => {
            crate::ops::outbound_ctl::run(daemon, cmd, rest, json)
        }
        _ => Err(format!(
            "unknown command '{}'; commands: {USAGE}",
            w.join(" ")
        )),
    }
}

/// `upgrade [--binary PATH]`: a binary upgrade ([`crate::ops::upgrade`]);
/// the answer comes once the new process is ready (or the upgrade failed).
fn upgrade(daemon: &Daemon, words: &[&str], (who, json): (&str, bool)) -> Result<String, String> {
    let binary = match words {
        [] => None,
        ["--binary", path] if std::path::Path::new(path).is_absolute() => Some(path.into()),
        ["--binary", path] => return Err(format!("--binary {path}: an absolute path, please")),
        _ => return Err(format!("'{}': upgrade [--binary PATH]", words.join(" "))),
    };
    let pid = crate::ops::upgrade::upgrade(daemon, binary, who)?;
    let old = std::process::id();
    let grace = humantime::format_duration(daemon.current().shutdown_grace);
    Ok(if json {
        format!(
            "{}\n",
            json!({"upgraded": true, "new_pid": pid, "old_pid": old, "grace": grace.to_string()})
        )
    } else {
        format!("upgraded: process {pid} serves; process {old} drains its connections (at most {grace})\n")
    })
}

/// `deny add NET [for DURATION] [reason TEXT]`, `deny del NET` and the same
/// for `exempt`: run-time entries, which last (kept in the state file) until
/// deleted or expired; the output for the client, or why it failed.
fn edit(
    daemon: &Daemon,
    kind: ListKind,
    add: bool,
    words: &[&str],
    (who, as_json): (&str, bool),
) -> Result<String, String> {
    let list = kind.noun();
    let end = words
        .iter()
        .position(|w| matches!(*w, "for" | "reason"))
        .unwrap_or(words.len());
    let net = netmask(&words[..end])?;
    if !add {
        if end != words.len() {
            return Err(format!(
                "'{}': del takes a net only",
                words[end..].join(" ")
            ));
        }
        let entry = daemon.del_runtime(kind, &net)?;
        tracing::info!(target: "socks4d", %net, by = who, reason = entry.reason.as_deref().unwrap_or("-"), "control: {list} deleted");
        save_state(daemon);
        return Ok(match as_json {
            true => format!(
                "{}\n",
                json!({"list": kind.name(), "net": net.to_string(), "deleted": true})
            ),
            false => format!("deleted {net} from the {list} list\n"),
        });
    }
    let (mut ttl, mut reason) = (None, None);
    let mut rest = words[end..].iter();
    while let Some(word) = rest.next() {
        match *word {
            "for" => {
                let d = rest.next().ok_or("'for' needs a duration (30s, 1h, 2d)")?;
                ttl = Some(humantime::parse_duration(d).map_err(|e| format!("for '{d}': {e}"))?);
            }
            _ => {
                let text: Vec<&str> = rest.by_ref().copied().collect();
                if text.is_empty() {
                    return Err("'reason' needs a text".into());
                }
                reason = Some(text.join(" "));
            }
        }
    }
    let addition = Addition {
        kind,
        net,
        ttl,
        reason: reason.clone(),
        who,
    };
    let added = daemon.add_runtime(addition, std::time::SystemTime::now())?;
    let expires = ttl.map_or_else(
        || "never".to_owned(),
        |d| humantime::format_duration(d).to_string(),
    );
    tracing::info!(target: "socks4d", %net, added, by = who, reason = reason.as_deref().unwrap_or("-"), expires_in = %expires, "control: {list} added");
    save_state(daemon);
    Ok(match (as_json, added) {
        (true, _) => format!("{}\n", json!({"list": kind.name(), "net": net.to_string(), "added": added, "expires_in_seconds": ttl.map(|d| d.as_secs())})),
        (false, true) => format!("added {net} to the {list} list (expires: {expires})\n"),
        (false, false) => format!("{net} is already on the {list} list: its reason and expiry are renewed (expires: {expires})\n"),
    })
}

/// Writes the state file now, if there is one (the control socket's
/// thread may block).
fn save_state(daemon: &Daemon) {
    if let Some(file) = daemon.state_file() {
        if let Err(e) = file.save(daemon.clients(), false) {
            tracing::warn!(target: "socks4d", state_file = %file.path().display(), error = %e, "cannot write the state file");
        }
    }
}

/// `deny list` or `exempt list`: every entry, the config file's and the
/// run-time ones (with their reason, who added them, when, and when they
/// expire).
fn list(daemon: &Daemon, kind: ListKind, as_json: bool) -> String {
    let cfg = daemon.server_config();
    let nets: Vec<Netmask> = match kind {
        ListKind::Deny => cfg.policy.denials.iter().collect(),
        ListKind::Exempt => cfg.policy.exemptions.iter().collect(),
    };
    let lists = daemon.runtime_lists();
    let runtime = match kind {
        ListKind::Deny => &lists.deny,
        ListKind::Exempt => &lists.exempt,
    };
    let time = |t: u64| {
        humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(t))
            .to_string()
    };
    let mut entries = Vec::new();
    for net in nets {
        let entry = runtime
            .iter()
            .find(|e| e.net.parse::<Netmask>().ok() == Some(net));
        entries.push(match entry {
            Some(e) if !daemon.on_file_list(kind, &net) => json!({
                "net": net.to_string(), "source": "runtime", "reason": e.reason,
                "added_by": e.added_by, "added_at": time(e.added_at),
                "expires_at": e.expires_at.map(time),
            }),
            _ => json!({"net": net.to_string(), "source": "file"}),
        });
    }
    if as_json {
        return format!("{}\n", json!(entries));
    }
    let text = |v: &serde_json::Value| v.as_str().map(str::to_owned);
    entries
        .iter()
        .map(|e| match e["source"] == "runtime" {
            true => format!(
                "{} runtime added_by={:?} added_at={} expires_at={} reason={:?}\n",
                e["net"].as_str().unwrap_or_default(),
                text(&e["added_by"]).unwrap_or_default(),
                text(&e["added_at"]).unwrap_or_default(),
                text(&e["expires_at"]).unwrap_or_else(|| "never".into()),
                text(&e["reason"]).unwrap_or_else(|| "-".into()),
            ),
            false => format!("{} file\n", e["net"].as_str().unwrap_or_default()),
        })
        .collect()
}

fn netmask(words: &[&str]) -> Result<Netmask, String> {
    if words.is_empty() {
        return Err("a net is missing (any, ADDR, ADDR/LEN or ADDR MASK)".into());
    }
    words.join(" ").parse().map_err(|e| format!("{e}"))
}

fn list_kind(word: &str) -> ListKind {
    match word {
        "deny" => ListKind::Deny,
        _ => ListKind::Exempt,
    }
}

/// `check IP [to IP:PORT] [user USER] [cert NAME] [command connect|bind]`: what the lists
/// say about a client address and, with a destination, which rule decides.
fn check(daemon: &Daemon, ip: &str, rest: &[&str], as_json: bool) -> Result<String, String> {
    let ip: IpAddr = ip
        .parse()
        .map_err(|_| format!("'{ip}' is not an IP address"))?;
    let cfg = daemon.server_config();
    let policy = &cfg.policy;
    let (denial, exemption) = (policy.denials.find(ip), policy.exemptions.find(ip));
    let mut value = json!({
        "ip": ip.to_string(),
        "denied_by": denial.map(|n| n.to_string()),
        "exempted_by": exemption.map(|n| n.to_string()),
        "allowed_by_lists": denial.is_none() || exemption.is_some(),
    });
    let mut out = match (denial, exemption) {
        (Some(d), Some(e)) => {
            format!("exempted: {e} on the exemption list (denial {d} does not apply)\n")
        }
        (Some(d), None) => format!("denied: {d} on the denial list\n"),
        (None, Some(e)) => format!("allowed by the lists (exempted by {e}; no denial applies)\n"),
        (None, None) => "allowed by the lists (no denial applies)\n".to_owned(),
    };
    let (dest, user, command, cert) = check_words(rest)?;
    if let Some(dest) = dest {
        let subject = Subject {
            client: SocketAddr::new(ip, 0),
            dest_addr: Some(dest.ip()),
            dest_host: None,
            dest_port: dest.port(),
            command,
            user_id: user.as_bytes(),
            cert: cert.as_deref(),
        };
        let verdict = policy.evaluate(&subject);
        let decision = if verdict.is_pass() { "pass" } else { "block" };
        let rule = match verdict.source {
            socks4_acl::Source::Rule { number, .. } => policy
                .rules
                .rules()
                .get(number - 1)
                .map(|r| format!(": {r}"))
                .unwrap_or_default(),
            _ => String::new(),
        };
        out.push_str(&format!("{decision} {dest}: {}{rule}\n", verdict.source));
        value["dest"] = json!(dest.to_string());
        value["decision"] = json!(decision);
        value["source"] = json!(verdict.source.to_string());
        value["rule"] = json!(rule.trim_start_matches(": "));
        if verdict.is_pass() && command == Command::Connect {
            let found = policy.routes.find(&subject);
            let route = match found {
                Some((n, _, route)) => format!("route {n}: {}", route.redacted()),
                None => "route: direct".to_owned(),
            };
            out.push_str(&format!("{route}\n"));
            value["route"] = json!(route);
            let default = socks4_acl::Exit::default();
            let clauses = found.map_or(&default, |(_, _, r)| &r.exit);
            let (text, exit) = crate::conn::exit::shown(clauses, &daemon.current().outgoing);
            out.push_str(&format!("exit: {text}\n"));
            value["exit"] = exit;
        }
    }
    Ok(match as_json {
        true => format!("{value}\n"),
        false => out,
    })
}

/// `check`'s words after the address: the destination, user id, command and
/// certificate name asked about.
type CheckWords = (Option<SocketAddr>, String, Command, Option<String>);

fn check_words(rest: &[&str]) -> Result<CheckWords, String> {
    let mut dest: Option<SocketAddr> = None;
    let mut user = String::new();
    let mut command = Command::Connect;
    let mut cert: Option<String> = None;
    let mut words = rest.iter();
    while let Some(word) = words.next() {
        let value = words
            .next()
            .ok_or_else(|| format!("'{word}' needs a value"))?;
        match *word {
            "to" => {
                dest = Some(
                    value
                        .parse()
                        .map_err(|_| format!("'{value}' is not IP:PORT"))?,
                )
            }
            "user" => user = (*value).to_owned(),
            "cert" => cert = Some((*value).to_owned()),
            "command" => {
                command = match *value {
                    "connect" => Command::Connect,
                    "bind" => Command::Bind,
                    other => return Err(format!("'{other}': expected connect or bind")),
                }
            }
            other => return Err(format!("'{other}': expected to, user, cert or command")),
        }
    }
    Ok((dest, user, command, cert))
}

fn stats(daemon: &Daemon) -> String {
    let s = daemon.counters();
    let pairs = |v: &[(&str, u64)]| {
        v.iter()
            .map(|(k, n)| ((*k).to_owned(), json!(n)))
            .collect::<serde_json::Map<_, _>>()
    };
    let value = json!({
        "opened": s.opened,
        "closed": s.closed,
        "active": s.active,
        "relays_open": s.relays_open,
        "accept_pauses": s.accept_pauses,
        "bytes_client_to_dest": s.client_to_dest,
        "bytes_dest_to_client": s.dest_to_client,
        "log_lines_dropped": s.log_lines_dropped,
        "reloads_ok": s.reloads_ok,
        "reloads_failed": s.reloads_failed,
        "replies": s.by_reply.iter().map(|(c, n)| (c.as_u8().to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
        "outcomes": pairs(&s.by_outcome),
        "limited": pairs(&s.limited),
        "ident_queries": pairs(&s.idents),
        "dns_lookups": pairs(&s.lookups),
        "notifications": pairs(&s.notifications),
        "proxy_headers": pairs(&s.proxy_headers),
        "tls_failures": s.tls_failures.iter().filter(|(_, _, n)| *n > 0).map(|(side, kind, n)| (format!("{side}_{kind}"), json!(n))).collect::<serde_json::Map<_, _>>(),
        "listeners": s.listeners.iter().map(|(a, o, c)| json!({"listener": a.to_string(), "opened": o, "closed": c})).collect::<Vec<_>>(),
    });
    format!("{value:#}\n")
}

/// One line per tracked client (an address, or an identity with `[limits]
/// key`: `cert:NAME`, `ident:NAME`), the largest byte total first; `key=`
/// says which kind of key it is.
fn clients(daemon: &Daemon, as_json: bool) -> String {
    let mut out = String::new();
    if as_json {
        let list: Vec<_> = daemon
            .clients()
            .snapshot()
            .into_iter()
            .map(|(key, s)| {
                json!({
                    "client": key.to_string(), "key": key.kind().name(),
                    "active": s.active, "binds": s.binds,
                    "connections": s.connections, "bytes_up": s.bytes_up,
                    "bytes_down": s.bytes_down,
                    "limited": s.limited.iter().map(|(l, n)| (l.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
                })
            })
            .collect();
        return format!("{}\n", json!(list));
    }
    for (key, s) in daemon.clients().snapshot() {
        let limited: Vec<String> = s.limited.iter().map(|(l, n)| format!("{l}:{n}")).collect();
        out.push_str(&format!(
            "{key} active={} binds={} connections={} bytes_up={} bytes_down={} limited={} key={}\n",
            s.active,
            s.binds,
            s.connections,
            s.bytes_up,
            s.bytes_down,
            if limited.is_empty() {
                "-".to_owned()
            } else {
                limited.join(",")
            },
            key.kind().name(),
        ));
    }
    out
}
