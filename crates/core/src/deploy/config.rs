//! How long a burst of pushes waits and a deployment may run: `DEPLOY_DEBOUNCE_SECONDS` and
//! `DEPLOY_TIMEOUT_SECONDS`, parsed and bounded.

pub const DEFAULT_DEBOUNCE_SECONDS: i64 = 10;
pub const DEFAULT_TIMEOUT_SECONDS: i64 = 15 * 60;
/// Each push restarts the debounce window, but never beyond this many windows after the
/// burst's first push: a branch pushed more often than the window (a bot committing every few
/// seconds) must still deploy, within a minute at the default window, instead of waiting
/// forever for a quiet moment.
pub const DEBOUNCE_CAP_FACTOR: i64 = 6;
const MAX_DEBOUNCE_SECONDS: i64 = 3600;
const MAX_TIMEOUT_SECONDS: i64 = 24 * 3600;

/// `DEPLOY_DEBOUNCE_SECONDS` and `DEPLOY_TIMEOUT_SECONDS`, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeployConfig {
    pub debounce_ms: i64,
    pub timeout_ms: i64,
}

impl Default for DeployConfig {
    fn default() -> Self {
        DeployConfig {
            debounce_ms: DEFAULT_DEBOUNCE_SECONDS * 1000,
            timeout_ms: DEFAULT_TIMEOUT_SECONDS * 1000,
        }
    }
}

impl DeployConfig {
    /// From the environment's strings; unset (or empty) means the default.
    pub fn from_env(
        debounce_seconds: Option<&str>,
        timeout_seconds: Option<&str>,
    ) -> Result<DeployConfig, String> {
        let seconds = |name: &str, v: Option<&str>, default: i64, range: (i64, i64)| match v
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            None => Ok(default),
            Some(s) => s
                .parse::<i64>()
                .ok()
                .filter(|n| (range.0..=range.1).contains(n))
                .ok_or_else(|| {
                    format!(
                        "{name} must be a whole number of seconds from {} to {}",
                        range.0, range.1
                    )
                }),
        };
        Ok(DeployConfig {
            debounce_ms: seconds(
                "DEPLOY_DEBOUNCE_SECONDS",
                debounce_seconds,
                DEFAULT_DEBOUNCE_SECONDS,
                (0, MAX_DEBOUNCE_SECONDS),
            )? * 1000,
            timeout_ms: seconds(
                "DEPLOY_TIMEOUT_SECONDS",
                timeout_seconds,
                DEFAULT_TIMEOUT_SECONDS,
                (1, MAX_TIMEOUT_SECONDS),
            )? * 1000,
        })
    }

    pub fn cap_ms(&self) -> i64 {
        self.debounce_ms * DEBOUNCE_CAP_FACTOR
    }
}
