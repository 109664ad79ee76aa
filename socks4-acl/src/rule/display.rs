//! How rules print: every part of a [`Rule`] in the text format, so that a
//! printed rule parses back to an equal one, and a [`Source`] as a log line
//! names it.

use super::condition::{DestMatch, HostPattern, PortMatch};
use super::matching::Rule;
use super::subject::Command;
use super::verdict::{Action, Source, DEFAULT_BLOCK_REPLY};
use crate::net::AddrClass;
use core::fmt;

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Pass => f.write_str("pass"),
            Action::Block {
                reply: DEFAULT_BLOCK_REPLY,
            } => f.write_str("block"),
            Action::Block { reply } => write!(f, "block reply {reply}"),
        }
    }
}

impl fmt::Display for PortMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortMatch::Any => f.write_str("any"),
            PortMatch::Eq(n) => write!(f, "eq {n}"),
            PortMatch::Neq(n) => write!(f, "neq {n}"),
            PortMatch::Lt(n) => write!(f, "lt {n}"),
            PortMatch::Gt(n) => write!(f, "gt {n}"),
            PortMatch::Range(a, b) => write!(f, "range {a}-{b}"),
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // A name that is also an address class keeps its final dot.
            HostPattern::Exact(name) if AddrClass::from_name(name).is_some() => {
                write!(f, "{name}.")
            }
            HostPattern::Exact(name) => f.write_str(name),
            HostPattern::Domain(domain) => write!(f, ".{domain}"),
        }
    }
}

impl fmt::Display for DestMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DestMatch::Any => f.write_str("any"),
            DestMatch::Net(net) => net.fmt(f),
            DestMatch::Host(pattern) => pattern.fmt(f),
            DestMatch::Class(class) => class.fmt(f),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Denied => f.write_str("denial list"),
            Source::Rule {
                number,
                line: Some(line),
            } => write!(f, "rule {number} (line {line})"),
            Source::Rule { number, line: None } => write!(f, "rule {number}"),
            Source::Default => f.write_str("default (no rule matched)"),
        }
    }
}

impl fmt::Display for Rule {
    /// One line of the rule text format, which parses back to the same rule.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.action.is_pass() {
            "pass"
        } else {
            "block"
        };
        write!(f, "{verb} from {}", self.from)?;
        if self.from_port != PortMatch::Any {
            write!(f, " port {}", self.from_port)?;
        }
        write!(f, " to {}", self.to)?;
        if self.to_port != PortMatch::Any {
            write!(f, " port {}", self.to_port)?;
        }
        if !self.commands.is_empty() {
            let names: Vec<&str> = self
                .commands
                .iter()
                .map(|c| match c {
                    Command::Connect => "connect",
                    Command::Bind => "bind",
                })
                .collect();
            write!(f, " command {}", names.join(","))?;
        }
        if !self.users.is_empty() {
            write!(f, " user {}", self.users.join(","))?;
        }
        if !self.certs.is_empty() {
            write!(f, " cert {}", self.certs.join(","))?;
        }
        if self.require_ident {
            f.write_str(" ident")?;
        }
        if self.log {
            f.write_str(" log")?;
        }
        if self.notify {
            f.write_str(" notify")?;
        }
        if let Some(b) = self.bandwidth {
            write!(f, " bandwidth {b}")?;
        }
        if let Some(q) = self.quota {
            write!(f, " quota {q}")?;
        }
        if let Action::Block { reply } = self.action {
            if reply != DEFAULT_BLOCK_REPLY {
                write!(f, " reply {reply}")?;
            }
        }
        Ok(())
    }
}
