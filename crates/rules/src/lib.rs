//! Access rules for the backend services: CEL expressions over `auth`, `doc` and `data`.
//!
//! A collection has one rule per [`Operation`] (`list`, `get`, `create`, `update`, `delete`),
//! compiled once into [`CollectionRules`] when the configuration is loaded and evaluated for
//! every browser request; an operation without a rule is denied. A function's
//! `auth = "<CEL>"` manifest key is a [`Rule`] too, evaluated with only `auth` set.
//!
//! ```
//! use gureum_rules::{Context, Rule};
//! use serde_json::json;
//!
//! let rule = Rule::compile("auth != null && doc.owner == auth.uid").unwrap();
//! let alice = json!({"uid": "alice", "email": "a@example.com", "claims": {}});
//! let doc = json!({"id": "d1", "owner": "alice", "data": {"title": "hi"}});
//! let ctx = Context { auth: Some(&alice), doc: Some(&doc), data: None };
//! assert_eq!(rule.allows(&ctx), Ok(true));
//! assert_eq!(rule.allows(&Context { auth: None, ..ctx }), Ok(false));
//! ```
//!
//! # Variables and values
//!
//! `auth`, `doc` and `data` are `null` when absent, else their JSON: objects are CEL maps
//! (`doc.data.title`, `auth.claims.role`), arrays lists, integers `int`, other numbers
//! `double`. CEL compares `int`, `uint` and `double` by numeric value (`doc.data.n >= 2`
//! holds for 2 and 2.5, `1 == 1.0` is true), but does *not* mix them in arithmetic
//! (`doc.data.price * 2` fails when the price is `2.5`: write `* 2.0`).
//!
//! Reading a field that is not there is an error, not `null` (CEL has no `undefined`): use
//! `has(doc.data.x)` to test first. Errors deny: [`Rule::allows`] returns an [`EvalError`]
//! and callers treat any error as a denial, so no rule can pass by accident.
//!
//! # CEL implementation
//!
//! The [`cel`](https://crates.io/crates/cel) crate 0.15 (cel-rust, maintained, MSRV 1.86),
//! with **no features**: its defaults are `regex` (the `matches()` function), `chrono`
//! (timestamps, durations) and `ext_encoders` (base64), none of which rules over JSON
//! documents need, and each pulls in sizable dependencies. Its `json` feature only converts
//! CEL values *to* JSON; the conversion this crate needs, JSON *to* CEL, is done here
//! (`json.rs`) so that the values borrow the request's strings instead of copying them, and
//! only the parts of the JSON the rule reads are converted.
//! With `regex` off, `matches()` is an unknown function, which fails at evaluation.
//!
//! cel 0.15 gives what this crate relies on: parse errors with line and column (and the
//! parser's "expecting …" message), node positions for the unknown-variable check, the
//! parsed syntax tree to walk for that check, a [`VariableResolver`](cel::context::VariableResolver)
//! to bind variables without allocating their names, and values that may borrow.
//!
//! # Cost
//!
//! Compiling parses with an ANTLR parser, about 40 µs for a four-clause rule in a release
//! build; do it once per configuration. Evaluating converts to CEL only what the rule reads
//! (`doc.owner` converts one string, borrowed; a bare `auth` converts that object) and walks
//! the tree. Measured by hand in a release build: about 0.2 µs for `doc.owner == "x"`,
//! 0.6 µs for the owner rule `auth != null && doc.owner == auth.uid` (the `auth != null`
//! builds the `auth` map), 1 µs when a rule uses a whole ~20-value document as a value.

mod collection;
mod error;
mod json;
mod query;
mod rule;

pub use collection::{CollectionRules, Operation};
pub use error::{Diagnostic, EvalError, RuleError, RulesError, RulesProblem, UnknownOperation};
pub use query::{Pinned, QueryVerdict};
pub use rule::{Context, Rule};

#[cfg(test)]
mod tests;
