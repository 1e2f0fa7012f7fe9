//! One rule: a CEL expression over `auth`, `doc` and `data`, compiled once and evaluated for
//! each request.
//!
//! Compiling parses the source into a program and checks that it only names the three
//! variables; evaluating hands the interpreter the request's JSON, converted (borrowed, see
//! [`crate::json`]) only as far as the expression reads it, and runs the program. The result
//! must be a bool.

use crate::error::{Diagnostic, EvalError, RuleError};
use crate::json::to_val;
use cel::common::ast::{EntryExpr, Expr, IdedEntryExpr, IdedExpr};
use cel::common::value::CowVal;
use cel::context::VariableResolver;
use cel::{Env, ExecutionError, Program, Value};
use std::fmt;
use std::sync::{Arc, LazyLock};

/// The variables a rule may name, in the order error messages list them.
const VARIABLES: [&str; 3] = ["auth", "doc", "data"];

/// The standard CEL environment (functions, operators, macros such as `has()` and `all()`),
/// built once: building it registers every overload, far too costly per rule or request.
static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| Arc::new(Env::stdlib()));

/// What a rule is evaluated against. Each variable is `null` in the expression when `None`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    /// The caller: `{"uid", "email", "claims": {…}}`, or `None` for an anonymous caller.
    pub auth: Option<&'a serde_json::Value>,
    /// The stored document, `{"id", "owner", "created", "updated", "version", "data": {…}}`,
    /// or `None` when there is none (create, list).
    pub doc: Option<&'a serde_json::Value>,
    /// The incoming data object (create, update), or `None`.
    pub data: Option<&'a serde_json::Value>,
}

/// A compiled rule: its source and the CEL program, ready to be evaluated many times.
///
/// Cheap to clone (the program is shared) and safe to share between threads.
#[derive(Clone)]
pub struct Rule {
    source: String,
    program: Arc<Program>,
}

impl fmt::Debug for Rule {
    // The program's own Debug is its whole syntax tree; the source says the same, shorter.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Rule").field(&self.source).finish()
    }
}

impl Rule {
    /// Compiles a CEL expression.
    ///
    /// Fails on an empty source, on a syntax error (each error with its `line:column`, the
    /// source line and a caret, and what the parser expected there), and on a variable
    /// other than `auth`, `doc` and `data`. Functions are not checked here: an unknown one
    /// (e.g. `matches()`, left out with the `regex` feature) fails when evaluated.
    pub fn compile(source: &str) -> Result<Rule, RuleError> {
        if source.trim().is_empty() {
            return Err(RuleError::Empty);
        }
        let program = ENV.compile(source).map_err(|errors| {
            RuleError::Syntax(
                errors
                    .errors
                    .iter()
                    .map(|e| {
                        // Positions are (line, column), both from 1, column in characters.
                        let line = usize::try_from(e.pos.0).unwrap_or(1);
                        let column = usize::try_from(e.pos.1).unwrap_or(1);
                        Diagnostic::at(source, line, column, e.msg.clone())
                    })
                    .collect(),
            )
        })?;
        let mut bound = Vec::new();
        check_variables(program.expression(), &mut bound).map_err(|(name, id)| {
            let message = format!(
                "unknown variable `{name}`; rules can use {}",
                VARIABLES.join(", ")
            );
            let offset = program
                .source_info()
                .offset_for(id)
                .map_or(0, |(start, _)| start as usize);
            RuleError::UnknownVariable(Diagnostic::at_offset(source, offset, message))
        })?;
        Ok(Rule {
            source: source.to_owned(),
            program: Arc::new(program),
        })
    }

    /// The source the rule was compiled from, exactly as given.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates the rule in `ctx`: `Ok(true)` allows, `Ok(false)` denies.
    ///
    /// An `Err` is a rule that could not decide, and callers must deny: a result that is
    /// not a bool, a missing field (`doc.data.nope`; CEL has no `undefined`), a field of
    /// `null` (`auth.uid` when anonymous), mismatched types. CEL's `&&` and `||` absorb an
    /// error when the other side decides (`false && <error>` is `false`, `true || <error>`
    /// is `true`), so guards such as `auth != null && …` work in either order.
    pub fn allows(&self, ctx: &Context<'_>) -> Result<bool, EvalError> {
        self.evaluate(&Variables(ctx))
    }

    /// Runs the program with `vars` answering the variables.
    pub(crate) fn evaluate(&self, vars: &dyn VariableResolver) -> Result<bool, EvalError> {
        let mut cel_ctx = cel::Context::with_env(Arc::clone(&ENV));
        cel_ctx.set_variable_resolver(vars);
        match self.program.execute(&cel_ctx) {
            Ok(Value::Bool(allowed)) => Ok(allowed),
            Ok(other) => Err(EvalError::NotBool {
                got: type_name(&other),
            }),
            Err(ExecutionError::NoSuchKey(field)) => Err(EvalError::MissingField {
                field: field.to_string(),
            }),
            Err(ExecutionError::NoSuchOverload(o))
                if matches!(o.function(), "_._" | "_[_]")
                    && o.argument_types().first().is_some_and(|t| t == "null_type") =>
            {
                Err(EvalError::FieldOfNull)
            }
            Err(e) => Err(EvalError::Failed {
                message: e.to_string(),
            }),
        }
    }
}

/// The variables of one evaluation, handed to the interpreter by name and converted to CEL
/// values only when, and as far as, the expression reads them.
///
/// For a chain of field selections such as `doc.data.title`, the interpreter first asks for
/// the whole name, then for shorter and shorter prefixes (`doc.data`, then `doc`), selecting
/// the remaining fields on what it gets. Answering the whole name from the JSON directly
/// means `doc.owner == auth.uid` converts two strings, not two objects: evaluation cost
/// follows what the rule reads, not the size of the document. Anything that is not a path
/// through JSON objects (a missing field, a field of a non-object, of `null`) is answered
/// with "no such name", so the interpreter falls back to a shorter prefix and raises the
/// same error it would for the selection itself.
struct Variables<'c, 'a>(&'c Context<'a>);

impl VariableResolver for Variables<'_, '_> {
    fn resolve<'b>(&'b self, name: &str) -> Option<CowVal<'b, 'b>> {
        let name = name.strip_prefix('.').unwrap_or(name);
        let root = match root_variable(name)? {
            "auth" => self.0.auth,
            "doc" => self.0.doc,
            _ => self.0.data,
        };
        resolve_in(root, name)
    }
}

/// The rule variable `name` (`doc.data.title`) starts with, if it names one; anything
/// else is a comprehension variable, which lives in an inner scope found before this.
pub(crate) fn root_variable(name: &str) -> Option<&'static str> {
    let root = name.split('.').next()?;
    VARIABLES.into_iter().find(|v| *v == root)
}

/// `name` (`auth.claims.role`) looked up in the JSON of its root variable, `None` meaning
/// `null`: the value, or "no such name" when the path does not lead through objects to a
/// value (see [`Variables`]).
pub(crate) fn resolve_in<'b>(
    root: Option<&'b serde_json::Value>,
    name: &str,
) -> Option<CowVal<'b, 'b>> {
    let mut segments = name.split('.').skip(1);
    let Some(mut value) = root else {
        // An absent variable is `null`; but `doc.owner` of a null `doc` is no value.
        return segments
            .next()
            .is_none()
            .then(|| CowVal::owned(cel::common::types::CelNull));
    };
    for field in segments {
        value = value.as_object()?.get(field)?;
    }
    Some(CowVal::Owned(to_val(value)))
}

/// Walks the expression and fails with the first free identifier that is not a rule
/// variable, with its node id for the position. `bound` holds the comprehension variables in
/// scope (`x` in `doc.data.tags.all(x, x != "")`).
fn check_variables<'e>(expr: &'e IdedExpr, bound: &mut Vec<&'e str>) -> Result<(), (String, u64)> {
    match &expr.expr {
        Expr::Unspecified | Expr::Literal(_) => Ok(()),
        Expr::Ident(name) => {
            // A leading dot means the root scope: `.auth` is `auth`.
            let name = name.strip_prefix('.').unwrap_or(name);
            if VARIABLES.contains(&name) || bound.contains(&name) {
                Ok(())
            } else {
                Err((name.to_owned(), expr.id))
            }
        }
        Expr::Select(select) => check_variables(&select.operand, bound),
        Expr::Call(call) => {
            if let Some(target) = &call.target {
                check_variables(target, bound)?;
            }
            call.args
                .iter()
                .try_for_each(|arg| check_variables(arg, bound))
        }
        Expr::List(list) => list
            .elements
            .iter()
            .try_for_each(|e| check_variables(e, bound)),
        Expr::Map(map) => check_entries(&map.entries, bound),
        Expr::Struct(s) => check_entries(&s.entries, bound),
        Expr::Comprehension(c) => {
            // The range and the accumulator's start are outside the loop's scope; the
            // condition, step and result see the loop variables and the accumulator.
            check_variables(&c.iter_range, bound)?;
            check_variables(&c.accu_init, bound)?;
            let depth = bound.len();
            bound.push(&c.iter_var);
            if let Some(second) = &c.iter_var2 {
                bound.push(second);
            }
            bound.push(&c.accu_var);
            let inner = check_variables(&c.loop_cond, bound)
                .and_then(|()| check_variables(&c.loop_step, bound))
                .and_then(|()| check_variables(&c.result, bound));
            bound.truncate(depth);
            inner
        }
    }
}

/// [`check_variables`] for the entries of a map or struct literal.
fn check_entries<'e>(
    entries: &'e [IdedEntryExpr],
    bound: &mut Vec<&'e str>,
) -> Result<(), (String, u64)> {
    entries.iter().try_for_each(|entry| match &entry.expr {
        EntryExpr::MapEntry(e) => {
            check_variables(&e.key, bound)?;
            check_variables(&e.value, bound)
        }
        EntryExpr::StructField(f) => check_variables(&f.value, bound),
    })
}

/// The CEL name of a value's type, for [`EvalError::NotBool`].
fn type_name(value: &Value) -> &'static str {
    match value {
        Value::List(_) => "list",
        Value::Map(_) => "map",
        Value::Function(..) => "function",
        Value::Int(_) => "int",
        Value::UInt(_) => "uint",
        Value::Float(_) => "double",
        Value::String(_) => "string",
        Value::Bytes(_) => "bytes",
        Value::Bool(_) => "bool",
        Value::Null => "null",
        Value::Opaque(_) => "opaque",
        Value::Struct(_) => "struct",
    }
}
