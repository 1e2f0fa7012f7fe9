//! A collection's rules: one optional [`Rule`] per [`Operation`], compiled from the
//! `operation = "<CEL>"` table of a manifest. An operation without a rule is denied to
//! browser callers (admin and function tokens skip rules altogether; that is the caller's
//! business, not this crate's).

use crate::EvalError;
use crate::error::{RulesError, RulesProblem, UnknownOperation};
use crate::rule::{Context, Rule};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// What a request does to a collection's documents; each has its own rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    /// Query the collection (`GET .../docs?where=…`, and the collection stream).
    List,
    /// Read one document (`GET .../docs/{id}`, and its stream).
    Get,
    /// Add a document (`POST .../docs`).
    Create,
    /// Replace or patch a document (`PUT`/`PATCH .../docs/{id}`).
    Update,
    /// Remove a document (`DELETE .../docs/{id}`).
    Delete,
}

impl Operation {
    /// Every operation, in the order of the wire contract.
    pub const ALL: [Operation; 5] = [
        Operation::List,
        Operation::Get,
        Operation::Create,
        Operation::Update,
        Operation::Delete,
    ];

    /// The operation's name as written in manifests: `list`, `get`, `create`, `update`,
    /// `delete`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Operation::List => "list",
            Operation::Get => "get",
            Operation::Create => "create",
            Operation::Update => "update",
            Operation::Delete => "delete",
        }
    }

    /// Position in [`Operation::ALL`], used to index the rule table.
    const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Operation {
    type Err = UnknownOperation;

    /// Parses an exact, lower-case operation name (manifest keys are case-sensitive, so
    /// `List` is rejected rather than silently accepted in one place and not another).
    fn from_str(s: &str) -> Result<Operation, UnknownOperation> {
        Operation::ALL
            .into_iter()
            .find(|op| op.as_str() == s)
            .ok_or_else(|| UnknownOperation { name: s.to_owned() })
    }
}

/// The compiled rules of one collection: for each operation, a rule or none (deny).
///
/// Cheap to clone: the compiled programs are shared.
#[derive(Debug, Clone, Default)]
pub struct CollectionRules {
    rules: [Option<Rule>; 5],
}

impl CollectionRules {
    /// Compiles a table of `operation → CEL source`.
    ///
    /// Every key must be an operation name, and every rule must compile. All problems are
    /// reported together, each prefixed `rules.<operation>: `, so one deploy shows them all.
    /// An empty table denies everything.
    pub fn compile(map: &BTreeMap<String, String>) -> Result<CollectionRules, RulesError> {
        let mut problems = Vec::new();
        let mut rules: [Option<Rule>; 5] = Default::default();
        let mut failed_rules = Vec::new();
        for (key, source) in map {
            match key.parse::<Operation>() {
                Err(_) => problems.push(RulesProblem::UnknownOperation { key: key.clone() }),
                Ok(operation) => match Rule::compile(source) {
                    Ok(rule) => rules[operation.index()] = Some(rule),
                    Err(error) => failed_rules.push(RulesProblem::Rule { operation, error }),
                },
            }
        }
        if problems.is_empty() && failed_rules.is_empty() {
            return Ok(CollectionRules { rules });
        }
        // The map iterates keys alphabetically; report rule errors in operation order,
        // which is how people read the table.
        failed_rules.sort_by_key(|problem| match problem {
            RulesProblem::Rule { operation, .. } => operation.index(),
            RulesProblem::UnknownOperation { .. } => 0,
        });
        problems.extend(failed_rules);
        Err(RulesError { problems })
    }

    /// The rule for `op`, or `None` when the operation has no rule (deny).
    pub fn get(&self, op: Operation) -> Option<&Rule> {
        self.rules[op.index()].as_ref()
    }

    /// Whether `op` is allowed in `ctx`: its rule's answer, or `Ok(false)` when it has no
    /// rule. An `Err` means the rule failed to decide; callers deny then too.
    pub fn allows(&self, op: Operation, ctx: &Context<'_>) -> Result<bool, EvalError> {
        match self.get(op) {
            Some(rule) => rule.allows(ctx),
            None => Ok(false),
        }
    }

    /// The sources of the rules there are, keyed by operation name: the table this was
    /// compiled from (for showing and storing the configuration back).
    pub fn sources(&self) -> BTreeMap<String, String> {
        Operation::ALL
            .into_iter()
            .filter_map(|op| {
                self.get(op)
                    .map(|rule| (op.as_str().to_owned(), rule.source().to_owned()))
            })
            .collect()
    }
}
