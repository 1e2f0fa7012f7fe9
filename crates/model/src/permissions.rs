//! What a function's token may do (`[permissions]` in `gureum.toml`): least privilege by
//! default, as a Lambda execution role or a Cloud Functions service account. Without
//! grants a function reaches only its own key-value buckets and its own WebSocket
//! connections; documents, files and queued calls of other functions need a grant.

use std::fmt;
use std::sync::Arc;

use crate::{FunctionSpec, VersionNumber};

/// The collection pattern that matches every collection.
pub const EVERY_COLLECTION: &str = "*";

/// How much of a collection a grant opens, each level including the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DataAccess {
    /// Get, list and stream documents; list, download and sign files.
    Read,
    /// Read, plus create, update and delete documents and files.
    Write,
    /// Every operation: `*:admin` is the trust of the Firebase Admin SDK. On one
    /// collection it grants what `write` grants; it is kept apart so that operations that
    /// are neither reading nor writing data (none yet) need the explicit word.
    Admin,
}

impl DataAccess {
    /// `read`, `write` or `admin`.
    pub fn parse(text: &str) -> Option<DataAccess> {
        match text {
            "read" => Some(DataAccess::Read),
            "write" => Some(DataAccess::Write),
            "admin" => Some(DataAccess::Admin),
            _ => None,
        }
    }

    /// The word as the manifest spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            DataAccess::Read => "read",
            DataAccess::Write => "write",
            DataAccess::Admin => "admin",
        }
    }
}

impl fmt::Display for DataAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `data` grant: `COLLECTION:LEVEL`, or `*:LEVEL` for every collection.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DataGrant {
    /// A collection name or [`EVERY_COLLECTION`].
    pub collection: String,
    /// What it opens.
    pub access: DataAccess,
}

impl DataGrant {
    /// Parses `notes:read`; the error says what is wrong and how to write it.
    pub fn parse(text: &str) -> Result<DataGrant, String> {
        let Some((collection, level)) = text.split_once(':') else {
            return Err(format!(
                "expected COLLECTION:LEVEL (e.g. \"notes:read\", \"orders:write\", \"*:admin\"), got {text:?}"
            ));
        };
        if collection != EVERY_COLLECTION && !valid_collection(collection) {
            return Err(format!(
                "{collection:?} is not a collection name: use 1-63 of a-z 0-9 _ - starting with a letter or digit, or * for every collection"
            ));
        }
        let Some(access) = DataAccess::parse(level) else {
            return Err(format!(
                "{level:?} is not an access level: use read (get, list, stream), write (read plus create, update, delete) or admin (everything)"
            ));
        };
        Ok(DataGrant {
            collection: collection.to_string(),
            access,
        })
    }
}

impl fmt::Display for DataGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.collection, self.access)
    }
}

/// A function's grants (`[permissions]`); the default grants nothing beyond its own
/// buckets and connections.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Permissions {
    /// Documents and files, by collection.
    pub data: Vec<DataGrant>,
    /// Functions this one may queue events for with its token although their
    /// `[async] public` is false (`*`: every function).
    pub invoke: Vec<String>,
    /// Other functions whose WebSocket connections and channels this one may manage
    /// (`*`: every function); its own are always allowed.
    pub websocket: Vec<String>,
}

impl Permissions {
    /// The highest level any grant gives on `collection`.
    pub fn data_access(&self, collection: &str) -> Option<DataAccess> {
        self.data
            .iter()
            .filter(|grant| grant.collection == EVERY_COLLECTION || grant.collection == collection)
            .map(|grant| grant.access)
            .max()
    }

    /// Whether `caller` may queue calls to `function` (to itself always).
    pub fn may_invoke(&self, caller: &str, function: &str) -> bool {
        caller == function
            || self
                .invoke
                .iter()
                .any(|name| name == "*" || name == function)
    }

    /// Whether `caller` may manage the connections of `function`'s `/ws/` route.
    pub fn may_manage_connections(&self, caller: &str, function: &str) -> bool {
        caller == function
            || self
                .websocket
                .iter()
                .any(|name| name == "*" || name == function)
    }

    /// One line per kind of access, as the deploy output shows them.
    pub fn describe(&self, function: &str) -> Vec<String> {
        let list = |items: Vec<String>| items.join(", ");
        let mut lines = Vec::new();
        lines.push(if self.data.is_empty() {
            "data: none (add data = [\"COLLECTION:read\"] to [permissions])".to_string()
        } else {
            format!(
                "data: {}",
                list(self.data.iter().map(ToString::to_string).collect())
            )
        });
        if !self.invoke.is_empty() {
            lines.push(format!("invoke: {}", list(self.invoke.clone())));
        }
        let mut websocket = vec![function.to_string()];
        websocket.extend(self.websocket.iter().cloned());
        lines.push(format!("websocket: {}", list(websocket)));
        lines.push(format!("kv: the buckets of {function}"));
        lines
    }
}

/// A function version whose token was presented and is still honoured: live, or retired
/// within the grace period.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionIdentity {
    /// The function's name.
    pub name: String,
    /// The version the token was given to.
    pub version: VersionNumber,
    /// That version's spec (its `permissions` are what the token may do).
    pub spec: Arc<FunctionSpec>,
}

impl FunctionIdentity {
    /// The token's grants.
    pub fn permissions(&self) -> &Permissions {
        &self.spec.permissions
    }
}

/// Whether `name` is a collection name: 1-63 of a-z 0-9 _ -, starting with a letter or
/// digit (it becomes part of table names and URLs).
pub fn valid_collection(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        && name.as_bytes()[0].is_ascii_alphanumeric()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_parse_and_combine() {
        let permissions = Permissions {
            data: vec![
                DataGrant::parse("notes:read").unwrap(),
                DataGrant::parse("orders:write").unwrap(),
                DataGrant::parse("*:read").unwrap(),
            ],
            invoke: vec!["mailer".into()],
            websocket: vec![],
        };
        assert_eq!(permissions.data_access("notes"), Some(DataAccess::Read));
        assert_eq!(permissions.data_access("orders"), Some(DataAccess::Write));
        assert_eq!(permissions.data_access("other"), Some(DataAccess::Read));
        assert!(permissions.may_invoke("shop", "mailer"));
        assert!(permissions.may_invoke("shop", "shop"));
        assert!(!permissions.may_invoke("shop", "billing"));
        assert!(permissions.may_manage_connections("chat", "chat"));
        assert!(!permissions.may_manage_connections("chat", "game"));
        assert_eq!(Permissions::default().data_access("notes"), None);
        assert!(DataAccess::Read < DataAccess::Write && DataAccess::Write < DataAccess::Admin);
    }

    #[test]
    fn bad_grants_say_how_to_write_them() {
        assert!(
            DataGrant::parse("notes")
                .unwrap_err()
                .contains("COLLECTION:LEVEL")
        );
        assert!(
            DataGrant::parse("Notes:read")
                .unwrap_err()
                .contains("collection name")
        );
        assert!(
            DataGrant::parse("notes:delete")
                .unwrap_err()
                .contains("access level")
        );
        assert_eq!(
            DataGrant::parse("*:admin").unwrap().to_string(),
            "*:admin".to_string()
        );
    }
}
