//! [`FileOrigin`]: where parts of the config file are, so that errors about
//! the `[access] rules` text and the `[notify] command` name the file's line
//! and column.

use std::path::Path;

/// Where parts of the config file are (the `[access] rules` text, the
/// `[notify] command` key), so that errors name the file's line and column.
pub(super) struct FileOrigin<'a> {
    /// The config file, if any.
    pub(super) file: Option<&'a Path>,
    /// The file's line and column (from 1) of the `[access] rules` string's
    /// first character.
    pub(super) start: (usize, usize),
    /// The file's line and column of `[notify] command`.
    pub(super) notify_command: Option<(usize, usize)>,
}

impl<'a> FileOrigin<'a> {
    /// The places in `text`, the config file at `file` (both `None` without
    /// one).
    pub(super) fn of(file: Option<&'a Path>, text: Option<&str>) -> FileOrigin<'a> {
        FileOrigin {
            file,
            start: text.map_or((1, 1), rules_start),
            notify_command: text.and_then(|t| crate::observe::notify::key_position(t, "command")),
        }
    }
}

/// The file's line and column where the `[access] rules` string's text starts.
/// A multi-line string (`"""` or `'''`) drops the newline right after its
/// opening quotes, so its text starts on the next line.
#[cfg_attr(not(feature = "cli"), allow(unused_variables))]
fn rules_start(text: &str) -> (usize, usize) {
    #[cfg(not(feature = "cli"))]
    return (1, 1);
    #[cfg(feature = "cli")]
    rules_start_in_toml(text)
}

#[cfg(feature = "cli")]
fn rules_start_in_toml(text: &str) -> (usize, usize) {
    #[derive(serde::Deserialize)]
    struct File {
        access: Option<Access>,
    }
    #[derive(serde::Deserialize)]
    struct Access {
        rules: Option<toml::Spanned<String>>,
    }
    let Ok(File {
        access: Some(Access { rules: Some(rules) }),
    }) = toml::from_str::<File>(text)
    else {
        return (1, 1);
    };
    let start = rules.span().start;
    let line = text[..start].matches('\n').count() + 1;
    let raw = &text[start..];
    if ["\"\"\"\n", "'''\n", "\"\"\"\r\n", "'''\r\n"]
        .iter()
        .any(|q| raw.starts_with(q))
    {
        return (line + 1, 1);
    }
    let quote = if raw.starts_with("\"\"\"") || raw.starts_with("'''") {
        3
    } else {
        1
    };
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    (line, text[line_start..start].chars().count() + quote + 1)
}
