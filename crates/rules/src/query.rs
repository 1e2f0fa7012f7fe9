//! Whether a rule holds for *every* document a listing can return, decided from the
//! query alone ("rules are not filters", as in Firestore).
//!
//! A listing's `where field = value` clauses fix those fields in every document the query
//! can return. The rule is evaluated with `doc` made of exactly those fields: a read of any
//! other part of `doc` is an error, and CEL's errors only vanish where the other side of
//! `&&`/`||` decides alone. So `Ok(true)` means the rule allows every matching document,
//! whatever its other fields hold, and the answer never depends on stored data (no oracle
//! through counts, cursors, status codes or timing).

use crate::json::to_val;
use crate::rule::{Rule, resolve_in, root_variable};
use cel::common::value::CowVal;
use cel::context::VariableResolver;
use serde_json::Value;
use std::sync::Mutex;

/// What a query's equality clauses fix in every document it can return.
#[derive(Debug, Default, Clone)]
pub struct Pinned {
    /// Paths inside `doc` as rules name them (`owner`, `id`, `data.title`), with their value.
    fields: Vec<(String, Value)>,
}

impl Pinned {
    /// No field fixed.
    pub fn new() -> Pinned {
        Pinned::default()
    }

    /// Fixes `path` (`owner`, `data.a.b`) to `value` in every document; the first value
    /// given for a path wins (a second, different one matches nothing anyway).
    pub fn pin(&mut self, path: impl Into<String>, value: Value) {
        let path = path.into();
        if !self.fields.iter().any(|(p, _)| *p == path) {
            self.fields.push((path, value));
        }
    }

    /// Whether `path` is fixed.
    pub fn fixes(&self, path: &str) -> bool {
        self.get(path).is_some()
    }

    fn get(&self, path: &str) -> Option<&Value> {
        self.fields.iter().find(|(p, _)| p == path).map(|(_, v)| v)
    }
}

/// The verdict on a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryVerdict {
    /// The rule allows every document the query can return.
    Holds,
    /// The rule denies every document the query can return (or cannot decide without
    /// reading nothing of `doc`).
    Denied,
    /// The answer depends on fields the query does not fix: these `doc` paths
    /// (`doc.owner`, `doc.data.public`), longest first as the rule reads them.
    Unbounded(Vec<String>),
}

impl Rule {
    /// Decides the rule for every document matching a query that fixes `pinned`, with
    /// `auth` as in [`Rule::allows`] and no `data`.
    pub fn holds_for_query(&self, auth: Option<&Value>, pinned: &Pinned) -> QueryVerdict {
        let vars = QueryVariables {
            auth,
            pinned,
            unpinned: Mutex::new(Vec::new()),
        };
        let verdict = self.evaluate(&vars);
        let mut read = vars
            .unpinned
            .into_inner()
            .unwrap_or_else(|e| e.into_inner());
        // The interpreter asks for `doc.data.x`, then `doc.data`, then `doc`: keep the
        // longest name of each chain, once each, in the order the rule reads them.
        let all = read.clone();
        let mut kept = Vec::new();
        read.retain(|name| {
            let shorter = all.iter().any(|other| {
                other
                    .strip_prefix(name.as_str())
                    .is_some_and(|rest| rest.starts_with('.'))
            });
            let fresh = !shorter && !kept.contains(name);
            if fresh {
                kept.push(name.clone());
            }
            fresh
        });
        match verdict {
            Ok(true) => QueryVerdict::Holds,
            _ if !read.is_empty() && !matches!(verdict, Ok(false)) => QueryVerdict::Unbounded(read),
            _ => QueryVerdict::Denied,
        }
    }
}

/// The variables of a query-wide evaluation: `auth` as given, `data` null, and of `doc`
/// only the pinned paths; every other read of `doc` is recorded and answered "no such
/// name", which the interpreter turns into an error.
struct QueryVariables<'a> {
    auth: Option<&'a Value>,
    pinned: &'a Pinned,
    unpinned: Mutex<Vec<String>>,
}

impl VariableResolver for QueryVariables<'_> {
    fn resolve<'b>(&'b self, name: &str) -> Option<CowVal<'b, 'b>> {
        let name = name.strip_prefix('.').unwrap_or(name);
        match root_variable(name)? {
            "doc" => {
                let path = name.strip_prefix("doc.").unwrap_or("");
                match self.pinned.get(path) {
                    Some(value) if !path.is_empty() => Some(CowVal::Owned(to_val(value))),
                    _ => {
                        self.unpinned
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(name.to_owned());
                        None
                    }
                }
            }
            "data" => resolve_in(None, name),
            _ => resolve_in(self.auth, name),
        }
    }
}
