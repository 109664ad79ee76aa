//! Every key of the config file, read from the option structs themselves
//! ([`Options::keys`]): for an unknown key's error, which says the section
//! it belongs in, and for checks that a file or a page names every key.
//!
//! The names come from serde: a struct's `Deserialize` passes its field
//! names to the deserializer, so a deserializer that only records them
//! ([`FieldNames`]) lists a struct's keys exactly as the file spells them,
//! with nothing to keep in step by hand.

use super::{
    AccessOptions, FleetOptions, LimitOptions, NotifyOptions, Options, ParentOptions,
    ResolverOptions, TimeoutOptions, TlsOptions,
};
use serde::de::{self, Deserialize, Visitor};
use std::fmt;

/// The sections of the file, each with its struct's keys; `""` is the top
/// level.
fn sections() -> Vec<(&'static str, &'static [&'static str])> {
    vec![
        ("", fields::<Options>()),
        ("limits", fields::<LimitOptions>()),
        ("timeouts", fields::<TimeoutOptions>()),
        ("access", fields::<AccessOptions>()),
        ("tls", fields::<TlsOptions>()),
        ("notify", fields::<NotifyOptions>()),
        ("resolver", fields::<ResolverOptions>()),
        ("parents", fields::<ParentOptions>()),
        ("fleet", fields::<FleetOptions>()),
    ]
}

impl Options {
    /// Every key of the config file as `(section, key)`, `section` being
    /// `""` for the top-level keys; sections themselves are not keys.
    pub fn keys() -> Vec<(&'static str, &'static str)> {
        let sections = sections();
        let mut keys = Vec::new();
        for (section, fields) in &sections {
            for key in *fields {
                let is_section = section.is_empty() && sections.iter().any(|(s, _)| s == key);
                if !is_section {
                    keys.push((*section, *key));
                }
            }
        }
        keys
    }
}

/// Where `key` belongs, for an error about it written elsewhere: "under
/// [limits]", "at the top of the file, before any [section]"; `None` for a
/// key of no section.
#[cfg(feature = "cli")]
pub(super) fn home_of(key: &str) -> Option<String> {
    let homes: Vec<String> = Options::keys()
        .into_iter()
        .filter(|(_, k)| *k == key)
        .map(|(section, _)| match section {
            "" => "at the top of the file, before any [section]".to_owned(),
            s => format!("under [{s}]"),
        })
        .collect();
    (!homes.is_empty()).then(|| homes.join(" or "))
}

/// A config file's error, with where the key belongs when the error is an
/// unknown key that another section has (`max_connections_per_client`
/// written under `[access]`: it belongs under `[limits]`).
#[cfg(feature = "cli")]
pub(super) fn explain(message: String) -> String {
    let unknown = message
        .split("unknown field `")
        .nth(1)
        .and_then(|rest| rest.split('`').next());
    match unknown.and_then(|key| Some((key, home_of(key)?))) {
        Some((key, home)) => format!("{}\n`{key}` belongs {home}", message.trim_end()),
        None => message,
    }
}

/// The field names `T`'s `Deserialize` announces.
fn fields<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
    let mut names = FieldNames(&[]);
    let _ = T::deserialize(&mut names);
    names.0
}

/// A deserializer that records the field names a struct asks for and then
/// stops with an error.
struct FieldNames(&'static [&'static str]);

/// The error [`FieldNames`] stops with.
#[derive(Debug)]
struct Stop;

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("field names recorded")
    }
}

impl std::error::Error for Stop {}

impl de::Error for Stop {
    fn custom<T: fmt::Display>(_: T) -> Stop {
        Stop
    }
}

impl<'de> de::Deserializer<'de> for &mut FieldNames {
    type Error = Stop;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        Err(Stop)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Stop> {
        self.0 = fields;
        Err(Stop)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

#[cfg(all(test, feature = "cli"))]
mod tests {
    use super::*;

    #[test]
    fn every_section_and_key_is_listed() {
        let keys = Options::keys();
        assert!(keys.contains(&("", "listen")));
        assert!(keys.contains(&("limits", "max_connections_per_client")));
        assert!(keys.contains(&("timeouts", "connect")));
        assert!(keys.contains(&("access", "rules")));
        assert!(keys.contains(&("tls", "cert")));
        assert!(keys.contains(&("notify", "command")));
        assert!(keys.contains(&("resolver", "nameservers")));
        assert!(keys.contains(&("parents", "max_failures")));
        assert!(!keys.contains(&("", "resolver")), "a section is not a key");
        assert!(!keys.contains(&("", "limits")), "a section is not a key");
        assert_eq!(
            home_of("max_connections_per_client").as_deref(),
            Some("under [limits]")
        );
        assert_eq!(
            home_of("listen").as_deref(),
            Some("at the top of the file, before any [section]")
        );
        assert_eq!(home_of("lisen"), None);
        let e = Options::from_toml("[access]\nmax_connections_per_client = 3\n").unwrap_err();
        assert!(
            e.contains("line 2")
                && e.ends_with("`max_connections_per_client` belongs under [limits]"),
            "{e}"
        );
        let e = Options::from_toml("[limits]\nlisten = []\n").unwrap_err();
        assert!(e.ends_with("before any [section]"), "{e}");
        let e = Options::from_toml("lisen = []\n").unwrap_err();
        assert!(
            e.contains("unknown field `lisen`") && !e.contains("belongs"),
            "{e}"
        );
    }
}
