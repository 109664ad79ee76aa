//! What a decision says: the [`Action`] (pass, or block with a reply code),
//! and the [`Verdict`] on one request with its [`Source`] (what decided it)
//! and the deciding rule's options.

use crate::limit::{Bandwidth, Quota};

/// The reply code a blocking rule sends unless it says otherwise (91).
pub const DEFAULT_BLOCK_REPLY: u8 = 91;

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Let the request through.
    Pass,
    /// Refuse it with this SOCKS reply code: 91, 92 or 93.
    Block {
        /// The reply code sent to the client.
        reply: u8,
    },
}

impl Action {
    /// Blocking with reply 91.
    pub const BLOCK: Action = Action::Block {
        reply: DEFAULT_BLOCK_REPLY,
    };

    /// Whether the action lets the request through.
    pub fn is_pass(self) -> bool {
        self == Action::Pass
    }
}

/// Where a verdict came from, so that a server can log and explain a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Source {
    /// The client address is on the denial list and not on the exemption list.
    Denied,
    /// A rule matched: its 1-based number and, when parsed from text, its line.
    Rule {
        /// The rule's position in the rule set, from 1.
        number: usize,
        /// The line of the rule text it came from.
        line: Option<usize>,
    },
    /// No rule matched: the rule set's default action.
    Default,
}

/// The decision on one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Verdict {
    /// Pass, or block with a reply code.
    pub action: Action,
    /// What decided it.
    pub source: Source,
    /// Whether the deciding rule requires IDENT confirmation.
    pub require_ident: bool,
    /// Whether the deciding rule asks for a log line.
    pub log: bool,
    /// Whether the deciding rule asks for a notification.
    pub notify: bool,
    /// The deciding rule's bandwidth for the client, if it sets one.
    pub bandwidth: Option<Bandwidth>,
    /// The deciding rule's traffic quota for the client, if it sets one.
    pub quota: Option<Quota>,
}

impl Verdict {
    /// Whether the request may go ahead (subject to IDENT when required).
    pub fn is_pass(&self) -> bool {
        self.action.is_pass()
    }
}
