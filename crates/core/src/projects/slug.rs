//! A project's slug: the identifier in every project route and the name of its GitHub
//! repository. Every value of [`ProjectSlug`] matches `^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$`
//! with no `--`, which is also a valid GitHub repository name.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::truncate;

const MAX_SLUG_LEN: usize = 64;
/// The part taken from the name stays short so the random suffix (and a retry suffix on top)
/// still fit comfortably in a repository name.
const MAX_NAME_PART: usize = 40;
/// What a name with no ASCII letter or digit (say, all CJK) becomes.
const FALLBACK_BASE: &str = "project";
const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ProjectSlug(String);

impl ProjectSlug {
    /// Validates a slug from a path segment or storage.
    pub fn parse(s: &str) -> Result<ProjectSlug, String> {
        let b = s.as_bytes();
        let ok = (1..=MAX_SLUG_LEN).contains(&b.len())
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            && b[0] != b'-'
            && b[b.len() - 1] != b'-'
            && !s.contains("--");
        if ok {
            Ok(ProjectSlug(s.to_owned()))
        } else {
            Err(format!(
                "project slug must be 1-64 of a-z, 0-9 and single dashes, not starting or ending with a dash; got {:?}",
                truncate(s, 80)
            ))
        }
    }

    /// A fresh slug for a project called `name`: the name's ASCII letters and digits,
    /// lowercased, with every other run of characters turned into one dash, cut to 40
    /// characters, plus `-` and four characters drawn from `random`.
    pub fn from_name(name: &str, random: [u8; 4]) -> ProjectSlug {
        let mut base = String::with_capacity(MAX_NAME_PART);
        for c in name.chars() {
            if base.len() == MAX_NAME_PART {
                break;
            }
            if c.is_ascii_alphanumeric() {
                base.push(c.to_ascii_lowercase());
            } else if !base.is_empty() && !base.ends_with('-') {
                base.push('-');
            }
        }
        let base = match base.trim_end_matches('-') {
            "" => FALLBACK_BASE,
            b => b,
        };
        ProjectSlug(format!("{base}-{}", random_suffix(random)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The Durable Object name of this project's store. The only place it is formatted.
    pub fn object_name(&self) -> String {
        format!("project-{}", self.0)
    }
}

/// The Durable Object name of the project listing (one for the whole deployment).
pub const INDEX_OBJECT_NAME: &str = "projects-index";

/// Four characters of `[a-z0-9]`. `byte % 36` is slightly biased (the first four letters come
/// up 8/256 instead of 7/256); the suffix only separates names, it is no secret.
pub(crate) fn random_suffix(random: [u8; 4]) -> String {
    random
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

impl<'de> Deserialize<'de> for ProjectSlug {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ProjectSlug::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for ProjectSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::RepoFullName;

    fn slug(name: &str) -> String {
        ProjectSlug::from_name(name, [0, 1, 26, 35]).0
    }

    #[test]
    fn from_name_normalises_and_appends_a_suffix() {
        assert_eq!(slug("Acme Corp"), "acme-corp-ab09");
        assert_eq!(slug("  --Hello,   World!!  "), "hello-world-ab09");
        assert_eq!(slug("Café_Münster 2"), "caf-m-nster-2-ab09");
        assert_eq!(slug("日本語"), "project-ab09");
        assert_eq!(slug(""), "project-ab09");
    }

    #[test]
    fn from_name_keeps_at_most_40_characters_of_the_name() {
        let s = slug(&"a".repeat(100));
        assert_eq!(s, format!("{}-ab09", "a".repeat(40)));
        // A cut that lands on a dash must not leave `--` before the suffix.
        let s = slug(&format!("{} b", "a".repeat(39)));
        assert_eq!(s, format!("{}-ab09", "a".repeat(39)));
    }

    #[test]
    fn random_suffix_uses_every_byte() {
        assert_eq!(random_suffix([0, 0, 0, 0]), "aaaa");
        assert_eq!(random_suffix([35, 36, 255, 71]), "9ad9");
    }

    #[test]
    fn generated_slugs_always_parse_and_are_repo_names() {
        let names = [
            "x",
            "A--B",
            "-",
            "émoji 🚀 launch",
            "UPPER lower 123",
            &"ab-".repeat(30),
        ];
        for (i, name) in names.iter().enumerate() {
            let s = ProjectSlug::from_name(name, [i as u8, 200, 13, 99]);
            assert_eq!(ProjectSlug::parse(s.as_str()), Ok(s.clone()), "{name}");
            assert!(RepoFullName::parse(&format!("org/{s}")).is_ok(), "{s}");
        }
    }

    #[test]
    fn parse_rules() {
        for good in ["a", "0", "a-b", "abc123", &"a".repeat(64)] {
            assert!(ProjectSlug::parse(good).is_ok(), "{good:?}");
            assert!(RepoFullName::parse(&format!("org/{good}")).is_ok());
        }
        for bad in [
            "",
            "-a",
            "a-",
            "a--b",
            "A",
            "a_b",
            "a.b",
            "a b",
            "é",
            &"a".repeat(65),
        ] {
            assert!(ProjectSlug::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn object_names() {
        assert_eq!(
            ProjectSlug::parse("acme-ab12").unwrap().object_name(),
            "project-acme-ab12"
        );
        assert!(
            !INDEX_OBJECT_NAME.starts_with("project-"),
            "no slug names the index"
        );
    }

    #[test]
    fn deserialize_validates() {
        assert!(serde_json::from_str::<ProjectSlug>("\"ok-1\"").is_ok());
        assert!(serde_json::from_str::<ProjectSlug>("\"Bad\"").is_err());
    }
}
