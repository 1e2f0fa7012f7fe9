//! A collection's configuration: rules per operation (CEL), indexed fields and file
//! limits. Set through the control API (JSON) or `gureum collections set` (TOML turned
//! into the same JSON); every problem is reported at once, each with its field path.

use std::collections::BTreeMap;

use gureum_rules::CollectionRules;
use gureum_store::FieldPath;
use serde::{Deserialize, Serialize};

/// Largest file a collection accepts when its config names no limit (25 MiB).
pub const DEFAULT_MAX_FILE_BYTES: u64 = 25 * 1024 * 1024;
/// Largest limit a config may set (5 GiB).
pub const MAX_FILE_BYTES: u64 = 5 * 1024 * 1024 * 1024;
/// Most indexed fields per collection.
pub const MAX_INDEXES: usize = 16;

/// The config as written (and as the control API returns it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionConfigInput {
    /// CEL expression per operation (`list`, `get`, `create`, `update`, `delete`); a
    /// missing one denies users and anonymous callers.
    #[serde(default)]
    pub rules: BTreeMap<String, String>,
    /// Data fields to index (`done`, `author.name`, or `created`…).
    #[serde(default)]
    pub indexes: Vec<String>,
    /// Limits on uploaded files.
    #[serde(default)]
    pub files: FileLimitsInput,
}

/// File limits as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileLimitsInput {
    /// Largest file in bytes (default 25 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
    /// Accepted media types (`image/png`, `image/*`); empty accepts any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<String>,
}

/// A validated config.
#[derive(Debug)]
pub struct CollectionConfig {
    /// As written.
    pub input: CollectionConfigInput,
    /// Compiled rules.
    pub rules: CollectionRules,
    /// Indexed fields.
    pub indexes: Vec<FieldPath>,
    /// Largest accepted file.
    pub max_file_bytes: u64,
}

impl CollectionConfig {
    /// The config of a collection nobody configured: no rules (users and anonymous
    /// callers are denied), no indexes, default file limits.
    pub fn unconfigured() -> CollectionConfig {
        CollectionConfig::compile(CollectionConfigInput::default())
            .expect("the empty config is valid")
    }

    /// Validates and compiles `input`; the error lists every problem, one per line.
    pub fn compile(input: CollectionConfigInput) -> Result<CollectionConfig, String> {
        let mut problems = Vec::new();
        let rules = match CollectionRules::compile(&input.rules) {
            Ok(rules) => Some(rules),
            Err(error) => {
                problems.push(error.to_string());
                None
            }
        };
        let mut indexes = Vec::new();
        if input.indexes.len() > MAX_INDEXES {
            problems.push(format!(
                "indexes: at most {MAX_INDEXES} fields per collection"
            ));
        }
        for (i, field) in input.indexes.iter().enumerate() {
            match FieldPath::parse(field) {
                Ok(FieldPath::Id) => {
                    problems.push(format!("indexes[{i}]: id is always indexed; remove it"))
                }
                Ok(path) if indexes.contains(&path) => {
                    problems.push(format!("indexes[{i}]: {field:?} is listed twice"));
                }
                Ok(path) => indexes.push(path),
                Err(error) => problems.push(format!("indexes[{i}]: {error}")),
            }
        }
        let max_file_bytes = input.files.max_bytes.unwrap_or(DEFAULT_MAX_FILE_BYTES);
        if max_file_bytes == 0 || max_file_bytes > MAX_FILE_BYTES {
            problems.push(format!(
                "files.max_bytes: {max_file_bytes} is out of range; use 1 to {MAX_FILE_BYTES} (5 GiB)"
            ));
        }
        for (i, pattern) in input.files.types.iter().enumerate() {
            let ok = pattern
                .split_once('/')
                .is_some_and(|(kind, sub)| !kind.is_empty() && !sub.is_empty() && kind != "*")
                && !pattern.contains(char::is_whitespace);
            if !ok {
                problems.push(format!(
                    "files.types[{i}]: {pattern:?} is not a media type; write e.g. \"image/png\" or \"image/*\""
                ));
            }
        }
        match rules {
            Some(rules) if problems.is_empty() => Ok(CollectionConfig {
                input,
                rules,
                indexes,
                max_file_bytes,
            }),
            _ => Err(problems.join("\n")),
        }
    }

    /// Whether an upload of `content_type` is accepted.
    pub fn accepts_type(&self, content_type: &str) -> bool {
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        self.input.files.types.is_empty()
            || self.input.files.types.iter().any(|pattern| {
                let pattern = pattern.to_ascii_lowercase();
                match pattern.strip_suffix("/*") {
                    Some(kind) => essence
                        .split_once('/')
                        .is_some_and(|(actual, _)| actual == kind),
                    None => essence == pattern,
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let input = CollectionConfigInput {
            rules: BTreeMap::from([("lsit".to_string(), "true".to_string())]),
            indexes: vec!["a..b".into(), "done".into(), "done".into(), "id".into()],
            files: FileLimitsInput {
                max_bytes: Some(0),
                types: vec!["png".into()],
            },
        };
        let error = CollectionConfig::compile(input).unwrap_err();
        for needle in [
            "lsit",
            "indexes[0]",
            "indexes[2]",
            "indexes[3]",
            "files.max_bytes",
            "files.types[0]",
        ] {
            assert!(error.contains(needle), "{needle} in {error}");
        }
    }

    #[test]
    fn media_type_patterns() {
        let config = CollectionConfig::compile(CollectionConfigInput {
            files: FileLimitsInput {
                max_bytes: None,
                types: vec!["image/*".into(), "application/pdf".into()],
            },
            ..CollectionConfigInput::default()
        })
        .unwrap();
        assert!(config.accepts_type("image/png"));
        assert!(config.accepts_type("Application/PDF; charset=binary"));
        assert!(!config.accepts_type("text/html"));
        assert!(CollectionConfig::unconfigured().accepts_type("text/html"));
        assert_eq!(config.max_file_bytes, DEFAULT_MAX_FILE_BYTES);
    }
}
