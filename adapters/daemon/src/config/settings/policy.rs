//! The access policy from the `[access]` options: the rules text of the
//! config file, the rules files, `--allow`, then the denial and exemption
//! lists ([`build_policy`]). Parse errors name the file's line and column.

use super::err;
use super::origin::FileOrigin;
use super::ConfigError;
use crate::config::options::{Net, Options};
use socks4_acl::{Netmask, Policy};

/// The line and column (in `body`) of the first rule's `notify` clause.
fn first_notify(part: &Policy, body: &str) -> Option<(usize, usize)> {
    let rules = part.rules.rules();
    let i = rules.iter().position(|r| r.notify)?;
    let line = part.rules.line(i)?;
    let text = body.lines().nth(line - 1)?;
    let text = text.split('#').next().unwrap_or(text);
    let at = text.match_indices("notify").map(|(at, _)| at).find(|&at| {
        let before = text[..at].chars().last();
        let after = text[at + "notify".len()..].chars().next();
        before.is_none_or(char::is_whitespace) && after.is_none_or(char::is_whitespace)
    })?;
    Some((line, text[..at].chars().count() + 1))
}

/// The netmasks of a list option.
fn netmasks(list: &Option<Vec<Net>>) -> impl Iterator<Item = Netmask> + '_ {
    list.iter().flatten().map(|n| n.0)
}

/// A text of rules, with what its errors need.
struct RuleText {
    /// What errors call it: the config file's `[access] rules`, or a rules
    /// file's path.
    name: String,
    /// The rules.
    body: String,
    /// Where its first character is in its file (line and column, from 1).
    start: (usize, usize),
    /// Whether it is the daemon's configuration (a config file or rules
    /// files), not rules an embedder set in code.
    daemon: bool,
}

/// The policy: the file's rules text, rules files, `--allow` rules, then the
/// lists. No rule at all means the secure default, [`Policy::loopback_only`].
///
/// In the daemon's configuration (a config file or rules files, not rules an
/// embedder set in code), a rule with `notify` needs a notification command.
pub(super) fn build_policy(
    all: &Options,
    origin: &FileOrigin<'_>,
    notify_configured: bool,
) -> Result<Policy, ConfigError> {
    let access = &all.access;
    let mut policy = Policy::empty();
    let mut any_rule = false;
    for text in rule_texts(all, origin)? {
        let part = parse_rules(&text, notify_configured)?;
        any_rule |= !part.rules.rules().is_empty() || part.rules.default_action().is_pass();
        policy.append(part);
    }
    for net in netmasks(&access.allow) {
        let mut rule = socks4_acl::Rule::new(socks4_acl::Action::Pass);
        rule.from = net;
        policy.rules.push(rule);
        any_rule = true;
    }
    for net in netmasks(&access.deny) {
        policy.add_denial(net);
    }
    for net in netmasks(&access.exempt) {
        policy.add_exemption(net);
    }
    if !any_rule {
        let lists = (policy.denials.clone(), policy.exemptions.clone());
        policy = Policy::loopback_only();
        (policy.denials, policy.exemptions) = lists;
    }
    Ok(policy)
}

/// The texts of rules, in order: `[access] rules`, then each rules file (read
/// here).
fn rule_texts(all: &Options, origin: &FileOrigin<'_>) -> Result<Vec<RuleText>, ConfigError> {
    let access = &all.access;
    let mut texts = Vec::new();
    if let Some(rules) = &access.rules {
        let name = match origin.file {
            Some(f) => format!("{}: [access] rules", f.display()),
            None => "[access] rules".to_owned(),
        };
        texts.push(RuleText {
            name,
            body: rules.clone(),
            start: origin.start,
            daemon: origin.file.is_some(),
        });
    }
    // The file's own were made relative to its folder when it was read
    // (`Settings::load`); the command line's are relative to the current one.
    for path in access.rules_file.iter().flatten() {
        let body =
            std::fs::read_to_string(path).map_err(|e| err(format!("{}: {e}", path.display())))?;
        texts.push(RuleText {
            name: path.display().to_string(),
            body,
            start: (1, 1),
            daemon: true,
        });
    }
    Ok(texts)
}

/// One text's rules. Errors name the place in its file; in the daemon's
/// configuration without a notification command, a rule with `notify` is one.
fn parse_rules(text: &RuleText, notify_configured: bool) -> Result<Policy, ConfigError> {
    let RuleText {
        name,
        body,
        start: (line, column),
        daemon,
    } = text;
    let part: Policy = body.parse().map_err(|e: socks4_acl::ParseError| {
        let mut e = e;
        if e.line == 1 {
            e.column += column - 1;
        }
        e.line += line - 1;
        err(format!("{name}: {e}"))
    })?;
    if *daemon && !notify_configured {
        if let Some((l, c)) = first_notify(&part, body) {
            let c = if l == 1 { c + column - 1 } else { c };
            return Err(err(format!(
                "{name}: line {}, column {c}: `notify` needs a notification command: \
                 add a [notify] section with `command` to the config file",
                l + line - 1
            )));
        }
    }
    Ok(part)
}
