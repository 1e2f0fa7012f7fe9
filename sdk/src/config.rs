//! Typed access to the function's configuration.
//!
//! gureum hands a function the manifest's `[env]` table, plus its own `GUREUM_*` values,
//! as environment variables (and, identically, as `wasi:config` runtime values). This
//! module reads the environment variables: that needs nothing beyond `wasi:cli`, so a
//! component using it still runs on any `wasi:http` host (`wasmtime serve --env KEY=V`),
//! whereas importing `wasi:config` would make such hosts refuse it unless they provide
//! that interface too. The two sources hold the same values on gureum.
//!
//! ```toml
//! # gureum.toml
//! [env]
//! GREETING = "Hello"
//! MAX_ITEMS = "20"
//! ```
//!
//! ```no_run
//! use gureum_sdk::config;
//!
//! # fn example() -> Result<(), config::ConfigError> {
//! let greeting = config::get("GREETING").unwrap_or_else(|| "Hi".to_owned());
//! let max_items: u32 = config::require("MAX_ITEMS")?;
//! let verbose: bool = config::get_or("VERBOSE", false)?;
//! # Ok(())
//! # }
//! ```

use std::fmt::Display;
use std::str::FromStr;

/// The platform's public base URL (functions, data and WebSocket APIs), set by gureum.
///
/// ```no_run
/// let api = gureum_sdk::config::get(gureum_sdk::config::API_URL);
/// ```
pub const API_URL: &str = "GUREUM_API";
/// The function's bearer token for the platform API, set by gureum. The SDK's service
/// modules send it; never hand it to clients or other functions.
///
/// ```no_run
/// let token = gureum_sdk::config::get(gureum_sdk::config::FUNCTION_TOKEN);
/// ```
pub const FUNCTION_TOKEN: &str = "GUREUM_FUNCTION_TOKEN";
/// The function's name, set by gureum; [`function_name`] reads it.
///
/// ```no_run
/// let name = gureum_sdk::config::get(gureum_sdk::config::FUNCTION_NAME);
/// ```
pub const FUNCTION_NAME: &str = "GUREUM_FUNCTION_NAME";
/// The number of the version that is running, set by gureum; [`function_version`] reads
/// it.
///
/// ```no_run
/// let version = gureum_sdk::config::get(gureum_sdk::config::FUNCTION_VERSION);
/// ```
pub const FUNCTION_VERSION: &str = "GUREUM_FUNCTION_VERSION";

/// Why a setting could not be read.
///
/// Its message names the key and says what was wrong, e.g. ``configuration `MAX_ITEMS` =
/// "lots" is invalid: invalid digit found in string``.
///
/// ```
/// use gureum_sdk::config::ConfigError;
///
/// let error = ConfigError::Missing { key: "API_KEY".into() };
/// assert!(error.to_string().contains("`API_KEY`"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The key is not set.
    #[error("configuration `{key}` is not set; {}", missing_hint(.key))]
    Missing {
        /// The key asked for.
        key: String,
    },
    /// The key is set but its value does not parse as the type asked for.
    #[error("configuration `{key}` = {value:?} is invalid: {reason}")]
    Invalid {
        /// The key asked for.
        key: String,
        /// The value found (lossily decoded if it was not UTF-8).
        value: String,
        /// Why it was refused: the parser's error.
        reason: String,
    },
}

impl ConfigError {
    /// The key the error is about.
    ///
    /// ```
    /// use gureum_sdk::config::ConfigError;
    /// assert_eq!(ConfigError::Missing { key: "PORT".into() }.key(), "PORT");
    /// ```
    pub fn key(&self) -> &str {
        match self {
            ConfigError::Missing { key } | ConfigError::Invalid { key, .. } => key,
        }
    }
}

/// The value of `key`, or `None` when it is not set (or is not valid UTF-8).
///
/// ```no_run
/// let region = gureum_sdk::config::get("REGION").unwrap_or_else(|| "eu".to_owned());
/// ```
pub fn get(key: &str) -> Option<String> {
    std::env::var(key).ok()
}

/// The value of `key` parsed as `T`; an error naming the key when it is missing or does
/// not parse.
///
/// ```no_run
/// # fn example() -> Result<(), gureum_sdk::config::ConfigError> {
/// let limit: usize = gureum_sdk::config::require("LIMIT")?;
/// let endpoint: String = gureum_sdk::config::require("ENDPOINT")?;
/// # Ok(())
/// # }
/// ```
pub fn require<T>(key: &str) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    match raw(key)? {
        Some(value) => parse(key, value),
        None => Err(ConfigError::Missing {
            key: key.to_owned(),
        }),
    }
}

/// The value of `key` parsed as `T`, or `default` when it is not set; an error naming the
/// key when it is set but does not parse.
///
/// ```no_run
/// # fn example() -> Result<(), gureum_sdk::config::ConfigError> {
/// let page_size: u32 = gureum_sdk::config::get_or("PAGE_SIZE", 50)?;
/// # Ok(())
/// # }
/// ```
pub fn get_or<T>(key: &str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    match raw(key)? {
        Some(value) => parse(key, value),
        None => Ok(default),
    }
}

/// The function's name on gureum (`GUREUM_FUNCTION_NAME`), `None` elsewhere.
///
/// ```no_run
/// let name = gureum_sdk::config::function_name().unwrap_or_default();
/// ```
pub fn function_name() -> Option<String> {
    get(FUNCTION_NAME)
}

/// The running version's number on gureum (`GUREUM_FUNCTION_VERSION`), `None` elsewhere.
///
/// ```no_run
/// let version = gureum_sdk::config::function_version();
/// ```
pub fn function_version() -> Option<u64> {
    get(FUNCTION_VERSION)?.parse().ok()
}

/// The variable's value; not-UTF-8 is an `Invalid` error rather than "missing".
fn raw(key: &str) -> Result<Option<String>, ConfigError> {
    match std::env::var(key) {
        Ok(value) => Ok(Some(value)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(value)) => Err(ConfigError::Invalid {
            key: key.to_owned(),
            value: value.to_string_lossy().into_owned(),
            reason: "not valid UTF-8".to_owned(),
        }),
    }
}

/// `value` of `key` parsed as `T`.
pub(crate) fn parse<T>(key: &str, value: String) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    value.parse().map_err(|error: T::Err| ConfigError::Invalid {
        key: key.to_owned(),
        reason: error.to_string(),
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names_the_key_the_value_and_the_reason() {
        assert_eq!(parse::<u32>("N", "42".to_owned()), Ok(42));
        let error = parse::<u32>("MAX_ITEMS", "lots".to_owned()).unwrap_err();
        assert_eq!(error.key(), "MAX_ITEMS");
        assert_eq!(
            error.to_string(),
            "configuration `MAX_ITEMS` = \"lots\" is invalid: invalid digit found in string"
        );
    }

    #[test]
    fn missing_and_defaults() {
        let key = "GUREUM_SDK_TEST_SURELY_UNSET";
        assert_eq!(get(key), None);
        assert_eq!(
            require::<String>(key),
            Err(ConfigError::Missing { key: key.into() })
        );
        assert_eq!(get_or(key, 7u8), Ok(7));
        // A platform name is set by gureum, not in [env] (which refuses GUREUM_*).
        let platform = require::<String>(key).unwrap_err().to_string();
        assert!(platform.contains("gureum sets it"), "{platform}");
        let user = require::<String>("SDK_TEST_SURELY_UNSET")
            .unwrap_err()
            .to_string();
        assert!(user.contains("[env] table of gureum.toml"), "{user}");
    }
}

/// How to set a missing key: the platform's own names cannot go in `[env]`.
fn missing_hint(key: &str) -> &'static str {
    if key.starts_with("GUREUM_") {
        "gureum sets it for every function; on another host pass it yourself (e.g. `wasmtime serve --env GUREUM_API=…`)"
    } else {
        "add it to the [env] table of gureum.toml (or the host's environment)"
    }
}
