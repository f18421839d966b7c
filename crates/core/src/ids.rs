//! Identifiers parsed once at the edge (a path segment, a JSON field), so nothing deeper
//! ever sees an unchecked id.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Largest id we accept: ids travel through JavaScript numbers inside the runtime, which are
/// exact only up to 2^53 − 1. GitHub's ids are far below it.
pub const MAX_SAFE_ID: u64 = (1 << 53) - 1;

macro_rules! numeric_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(u64);

        /// A JSON number, through [`Self::from_u64`]: 0 and unsafe integers are refused
        /// wherever an id is read, not only where a parser remembers to check.
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $name::from_u64(u64::deserialize(d)?).map_err(serde::de::Error::custom)
            }
        }

        impl $name {
            /// Parses a decimal id: digits only, no sign, no leading zero, 1..=2^53−1.
            pub fn parse(s: &str) -> Result<Self, String> {
                parse_positive(s)
                    .map($name)
                    .ok_or_else(|| format!("{} must be a positive integer", $what))
            }

            /// From a JSON number (rejects 0, negatives, fractions and unsafe integers).
            pub fn from_u64(n: u64) -> Result<Self, String> {
                if n == 0 || n > MAX_SAFE_ID {
                    return Err(format!("{} must be a positive integer", $what));
                }
                Ok($name(n))
            }

            pub fn get(self) -> u64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

numeric_id!(
    /// A GitHub App installation: one tenant.
    InstallationId,
    "installation id"
);
numeric_id!(
    /// A GitHub App.
    AppId,
    "app id"
);
numeric_id!(
    /// A repository, by GitHub's stable numeric id (names change on rename; ids don't).
    RepoId,
    "repository id"
);
numeric_id!(
    /// A GitHub user (an admin who signed in), by GitHub's stable numeric id.
    GithubUserId,
    "GitHub user id"
);

fn parse_positive(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 16 || !s.bytes().all(|b| b.is_ascii_digit()) || s.starts_with('0')
    {
        return None;
    }
    let n: u64 = s.parse().ok()?;
    (n <= MAX_SAFE_ID).then_some(n)
}

impl InstallationId {
    /// The Durable Object name of this installation's store. The only place it is formatted.
    pub fn object_name(self) -> String {
        format!("install-{}", self.0)
    }

    /// The installation whose store is named `name` (`install-<id>`, as [`Self::object_name`]
    /// formats it): how the store learns its own id from the name it was called by.
    pub fn from_object_name(name: &str) -> Result<Self, String> {
        name.strip_prefix("install-")
            .ok_or_else(|| "an installation store's name starts with install-".to_owned())
            .and_then(Self::parse)
    }
}

impl GithubUserId {
    /// The Durable Object name of this user's link to ghplane. The only place it is formatted.
    pub fn object_name(self) -> String {
        format!("user-{}", self.0)
    }
}

/// `owner/name` as GitHub allows them: owner 1–39 of `[A-Za-z0-9-]`, not starting with `-`;
/// name 1–100 of `[A-Za-z0-9._-]`, not `.` or `..`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct RepoFullName(String);

impl RepoFullName {
    pub fn parse(s: &str) -> Result<Self, String> {
        let err = || {
            format!(
                "repository must be \"owner/name\", got {:?}",
                truncate(s, 120)
            )
        };
        let (owner, name) = s.split_once('/').ok_or_else(err)?;
        let owner_ok = (1..=39).contains(&owner.len())
            && !owner.starts_with('-')
            && owner
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        let name_ok = (1..=100).contains(&name.len())
            && name != "."
            && name != ".."
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if owner_ok && name_ok {
            Ok(RepoFullName(s.to_owned()))
        } else {
            Err(err())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn owner(&self) -> &str {
        self.0.split_once('/').map_or("", |(o, _)| o)
    }

    pub fn name(&self) -> &str {
        self.0.split_once('/').map_or("", |(_, n)| n)
    }
}

impl<'de> Deserialize<'de> for RepoFullName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        RepoFullName::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for RepoFullName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Cuts user input for error messages so a huge value never ends up in a response or log.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installation_id_accepts_positive_decimal_only() {
        assert_eq!(InstallationId::parse("42").unwrap().get(), 42);
        assert_eq!(
            InstallationId::parse("9007199254740991").unwrap().get(),
            MAX_SAFE_ID
        );
        for bad in [
            "",
            "0",
            "-1",
            "+1",
            "01",
            "1.0",
            "abc",
            "1e3",
            " 1",
            "9007199254740992",
            "99999999999999999999",
        ] {
            assert!(
                InstallationId::parse(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn from_u64_bounds() {
        assert!(AppId::from_u64(0).is_err());
        assert!(AppId::from_u64(MAX_SAFE_ID + 1).is_err());
        assert_eq!(AppId::from_u64(7).unwrap().to_string(), "7");
    }

    #[test]
    fn ids_deserialize_through_from_u64() {
        let id: RepoId = serde_json::from_str("7").unwrap();
        assert_eq!(id.get(), 7);
        assert_eq!(serde_json::to_string(&id).unwrap(), "7");
        for bad in ["0", "-1", "1.5", "\"7\"", "9007199254740992", "null"] {
            let e = serde_json::from_str::<InstallationId>(bad);
            assert!(e.is_err(), "{bad}");
        }
        let e = serde_json::from_str::<AppId>("0").unwrap_err().to_string();
        assert!(e.starts_with("app id must be a positive integer"), "{e}");
    }

    #[test]
    fn object_name_is_install_prefix() {
        assert_eq!(
            InstallationId::parse("123").unwrap().object_name(),
            "install-123"
        );
    }

    #[test]
    fn an_object_name_reads_back_as_its_installation() {
        let id = InstallationId::parse("123").unwrap();
        assert_eq!(InstallationId::from_object_name(&id.object_name()), Ok(id));
        for bad in [
            "123",
            "install-",
            "install-0",
            "install-01",
            "user-123",
            "install-1x",
        ] {
            assert!(InstallationId::from_object_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn repo_full_name_rules() {
        let r = RepoFullName::parse("octo-org/hello.world_1").unwrap();
        assert_eq!((r.owner(), r.name()), ("octo-org", "hello.world_1"));
        for bad in [
            "",
            "a",
            "/a",
            "a/",
            "a/b/c",
            "-a/b",
            "a/..",
            "a/.",
            "a b/c",
            "o/na me",
            &format!("{}/x", "o".repeat(40)),
        ] {
            assert!(
                RepoFullName::parse(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h…");
        assert_eq!(truncate("abc", 5), "abc");
    }
}
