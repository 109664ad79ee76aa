//! Network namespaces and veth pairs for the peers tests (they need root):
//! [`Netns`] makes a namespace with loopback up and removes it on drop, with
//! the processes kept in it; [`Veth`] joins two namespaces (or one and this
//! one) and removes the pair on drop. Failed test or not, nothing is left.

use crate::e2e::run;
use std::process::{Child, Command, Stdio};

/// Runs a command; panics with its output when it fails.
pub fn sh(args: &[&str]) {
    let (status, out, err) = run(Command::new(args[0]).args(&args[1..]), b"");
    assert!(
        status.success(),
        "{args:?} failed: {err}{}",
        String::from_utf8_lossy(&out)
    );
}

/// A network namespace with loopback up; removed on drop, after the
/// processes handed to [`Netns::keep`] are killed.
pub struct Netns {
    name: String,
    children: Vec<Child>,
}

impl Netns {
    /// Makes namespace `name` (one of that name left over from an
    /// interrupted run is removed first) and sets its loopback up.
    pub fn new(name: impl Into<String>) -> Netns {
        let name = name.into();
        let _ = Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(Stdio::null())
            .status();
        sh(&["ip", "netns", "add", &name]);
        let ns = Netns {
            name,
            children: Vec::new(),
        };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n NAME ARGS`; panics when it fails.
    pub fn ip(&self, args: &[&str]) {
        let mut all = vec!["ip", "-n", &self.name];
        all.extend_from_slice(args);
        sh(&all);
    }

    /// `ip netns exec NAME PROGRAM`: a command that runs `program` inside
    /// (add its arguments).
    pub fn exec(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Loads the nftables `rules` inside; panics, saying `what` they are
    /// for, when nft fails.
    pub fn nft(&self, rules: &str, what: &str) {
        let (status, out, err) = run(self.exec("nft").arg("-f").arg("-"), rules.as_bytes());
        assert!(
            status.success(),
            "nftables rules for {what} failed (run .ci/setup for nft): {err}{}",
            String::from_utf8_lossy(&out)
        );
    }

    /// Keeps `child` (started inside) until the namespace is removed.
    pub fn keep(&mut self, child: Child) {
        self.children.push(child);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A veth pair, both ends up; removed on drop (deleting one end deletes
/// the pair, and removing a namespace removes the ends in it).
pub struct Veth {
    /// End `a` and its namespace (`None`: this one).
    a: (String, Option<String>),
}

impl Veth {
    /// The pair `a`–`b`, each end made in its namespace (`None`: this one,
    /// for `a` only). A left-over `a` in this namespace is removed first.
    pub fn new(a: &str, a_ns: Option<&Netns>, b: &str, b_ns: Option<&Netns>) -> Veth {
        let in_ns = |ns: Option<&Netns>| -> Vec<String> {
            ns.map_or(Vec::new(), |n| vec!["-n".into(), n.name.clone()])
        };
        if a_ns.is_none() {
            let _ = Command::new("ip")
                .args(["link", "del", a])
                .stderr(Stdio::null())
                .status();
        }
        let mut add = vec!["ip".to_owned()];
        add.extend(in_ns(a_ns));
        add.extend(["link", "add", a, "type", "veth", "peer", "name", b].map(String::from));
        match (a_ns, b_ns) {
            (Some(_), None) => panic!("veth {a}-{b}: name the end in this namespace first"),
            (Some(x), Some(y)) if x.name == y.name => {}
            (_, Some(y)) => add.extend(["netns".into(), y.name.clone()]),
            _ => {}
        }
        sh(&add.iter().map(String::as_str).collect::<Vec<_>>());
        for (end, ns) in [(a, a_ns), (b, b_ns)] {
            let mut up = vec!["ip".to_owned()];
            up.extend(in_ns(ns));
            up.extend(["link", "set", end, "up"].map(String::from));
            sh(&up.iter().map(String::as_str).collect::<Vec<_>>());
        }
        Veth {
            a: (a.to_owned(), a_ns.map(|n| n.name.clone())),
        }
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        let mut del = Command::new("ip");
        if let Some(ns) = &self.a.1 {
            del.args(["-n", ns]);
        }
        let _ = del
            .args(["link", "del", &self.a.0])
            .stderr(Stdio::null())
            .status();
    }
}
