//! Errors: a rule that does not compile ([`RuleError`], made of [`Diagnostic`]s that point
//! into the source), a rule that fails while it runs ([`EvalError`]), and a collection's
//! rule table that does not compile ([`RulesError`]).
//!
//! Compile errors are for the developer writing a manifest, so they carry the position and
//! the offending source line with a caret under it. Evaluation errors are for the server log:
//! the caller denies the request whatever the error is.

use crate::collection::Operation;
use std::fmt;
use thiserror::Error;

/// One problem found in a rule's source, at a position in it.
///
/// Displays as `line:column: message`, then the source line and a caret under the column,
/// each on a line of its own:
///
/// ```text
/// 1:15: Syntax error: mismatched input '<EOF>' expecting {…}
///   | auth != null &&
///   |               ^
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Line of the problem, counted from 1.
    pub line: usize,
    /// Column of the problem in characters (not bytes), counted from 1.
    pub column: usize,
    /// What is wrong, and what was expected there when the parser says.
    pub message: String,
    /// The whole source line the position is on, for the caret display.
    pub source_line: String,
}

impl Diagnostic {
    /// A diagnostic at `line:column` (both from 1) of `source`; the line is copied out of it.
    pub(crate) fn at(source: &str, line: usize, column: usize, message: String) -> Diagnostic {
        // The parser reports (0, 0) when it could not place an error at all; clamp so the
        // message still reads as a position.
        let line = line.max(1);
        let column = column.max(1);
        let source_line = source.lines().nth(line - 1).unwrap_or_default().to_owned();
        Diagnostic {
            line,
            column,
            message,
            source_line,
        }
    }

    /// A diagnostic at a byte offset (from 0) into `source`, as the parser records node
    /// positions.
    pub(crate) fn at_offset(source: &str, offset: usize, message: String) -> Diagnostic {
        // An offset past the end or inside a character would be a parser bug; point at the
        // end rather than panic.
        let before = source.get(..offset).unwrap_or(source);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Diagnostic::at(source, line, column, message)
    }

    /// Writes the diagnostic with `prefix` in front of its first line only (the source line
    /// and caret are continuation lines).
    fn write_prefixed(&self, f: &mut fmt::Formatter<'_>, prefix: &str) -> fmt::Result {
        write!(f, "{prefix}{}:{}: {}", self.line, self.column, self.message)?;
        if self.source_line.is_empty() {
            return Ok(());
        }
        // Tabs are kept in the caret's padding so the caret lines up with the line above
        // however the terminal renders them.
        let pad: String = self
            .source_line
            .chars()
            .take(self.column - 1)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        write!(f, "\n  | {}\n  | {pad}^", self.source_line)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_prefixed(f, "")
    }
}

/// A rule's source that cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RuleError {
    /// The source is empty or only whitespace. Kept apart from a syntax error because the
    /// parser's message for it (an unexpected end of input) does not say what to do.
    #[error(
        "the rule is empty; write an expression such as `auth != null`, or leave the rule out to deny"
    )]
    Empty,
    /// The source does not parse; every error the parser found, in source order.
    #[error("{}", DisplayAll(.0, ""))]
    Syntax(Vec<Diagnostic>),
    /// The source parses but names a variable that rules do not have, e.g. `uath.uid`.
    /// Caught at compile time because at run time it would only ever deny, silently.
    #[error("{0}")]
    UnknownVariable(Diagnostic),
}

impl RuleError {
    /// The positioned problems behind this error (none for [`RuleError::Empty`]).
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            RuleError::Empty => &[],
            RuleError::Syntax(all) => all,
            RuleError::UnknownVariable(one) => std::slice::from_ref(one),
        }
    }

    /// Writes the error with `prefix` in front of each problem's first line.
    fn write_prefixed(&self, f: &mut fmt::Formatter<'_>, prefix: &str) -> fmt::Result {
        match self {
            RuleError::Empty => write!(f, "{prefix}{self}"),
            RuleError::Syntax(all) => write!(f, "{}", DisplayAll(all, prefix)),
            RuleError::UnknownVariable(one) => one.write_prefixed(f, prefix),
        }
    }
}

/// Displays diagnostics one after the other, each with a prefix.
struct DisplayAll<'a>(&'a [Diagnostic], &'a str);

impl fmt::Display for DisplayAll<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, diagnostic) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            diagnostic.write_prefixed(f, self.1)?;
        }
        Ok(())
    }
}

/// A rule that could not decide. Callers deny the request; the message is for the log.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EvalError {
    /// The expression evaluated to something other than a bool, e.g. `doc.owner`.
    #[error("the rule evaluated to a value of type {got}, not a bool")]
    NotBool {
        /// The CEL type name of what it evaluated to: `int`, `double`, `string`, `map`, …
        got: &'static str,
    },
    /// A field that the object does not have was read, e.g. `doc.data.nope` (CEL has no
    /// `undefined`: reading a missing map key is an error, not null).
    #[error("no such field `{field}`; test for it first with has(), e.g. `has(doc.data.{field})`")]
    MissingField {
        /// The missing field (map key).
        field: String,
    },
    /// A field or index was read on `null`, typically `auth.uid` for an anonymous caller.
    /// The interpreter's own message (`no matching overload for '_._' applied to
    /// '(null_type, string)'`) does not say so; this one does.
    #[error(
        "a field was read on null (e.g. `auth.uid` when the caller is anonymous); guard it, e.g. `auth != null && auth.uid == doc.owner`"
    )]
    FieldOfNull,
    /// Any other evaluation error from the CEL interpreter: an operator applied to the wrong types (`1 + "a"`), an
    /// unknown function, a division by zero, ….
    #[error("{message}")]
    Failed {
        /// The interpreter's message.
        message: String,
    },
}

/// A collection's rule table that cannot be compiled: every problem found, not just the first.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{}", DisplayProblems(&self.problems))]
pub struct RulesError {
    /// The problems, unknown keys first then rules in operation order.
    pub problems: Vec<RulesProblem>,
}

/// One problem in a collection's rule table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RulesProblem {
    /// A key that is not an operation.
    UnknownOperation {
        /// The key as written.
        key: String,
    },
    /// The rule for an operation does not compile.
    Rule {
        /// The operation whose rule it is.
        operation: Operation,
        /// Why it does not compile.
        error: RuleError,
    },
}

impl fmt::Display for RulesProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RulesProblem::UnknownOperation { key } => write!(
                f,
                "rules.{key}: unknown operation `{key}`; valid operations are {}",
                Operation::ALL.map(Operation::as_str).join(", ")
            ),
            RulesProblem::Rule { operation, error } => {
                error.write_prefixed(f, &format!("rules.{operation}: "))
            }
        }
    }
}

impl std::error::Error for RulesProblem {}

/// Displays problems one after the other.
struct DisplayProblems<'a>(&'a [RulesProblem]);

impl fmt::Display for DisplayProblems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

/// A string that is not an operation name, from [`Operation::from_str`](std::str::FromStr).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown operation `{name}`; valid operations are list, get, create, update, delete")]
pub struct UnknownOperation {
    /// The string as given.
    pub name: String,
}
