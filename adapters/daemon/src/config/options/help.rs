//! `--help` that names each option's config key and default, both taken from
//! where they are declared ([`Options`] and [`Options::defaults`]).

use super::Options;
use clap::Args;

/// Adds to each option's `--help` line its config key and its default, taken
/// from [`Options::defaults`]: "(config: [timeouts] connect) [default: 2m]".
pub fn help_with_defaults(mut cmd: clap::Command) -> clap::Command {
    let defaults = toml::Value::try_from(Options::defaults()).expect("options serialize");
    let ids: Vec<String> = cmd
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .collect();
    for id in ids {
        let Some(key) = config_key(&id) else { continue };
        let default = lookup(&defaults, &id).map(show);
        cmd = cmd.mut_arg(id.as_str(), |arg| {
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            let mut help = format!("{help} (config: {key})");
            if let Some(d) = &default {
                help.push_str(&format!(" [default: {d}]"));
            }
            arg.help(help)
        });
    }
    cmd
}

/// `timeouts.connect` → `[timeouts] connect`; `listen` → `listen`. `None` for
/// the command line's own flags (help, version, config, check, -v, -q), which
/// are not [`Options`].
fn config_key(id: &str) -> Option<String> {
    let options = Options::augment_args(clap::Command::new("options"));
    if !options.get_arguments().any(|a| a.get_id() == id) {
        return None;
    }
    Some(match id.split_once('.') {
        Some((section, key)) => format!("[{section}] {key}"),
        None => id.to_owned(),
    })
}

fn lookup<'a>(v: &'a toml::Value, path: &str) -> Option<&'a toml::Value> {
    path.split('.').try_fold(v, |v, k| v.get(k))
}

fn show(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Array(items) => items.iter().map(show).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}
