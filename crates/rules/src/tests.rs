//! Unit tests: the rules of the wire contract's examples, CEL's number and null semantics as
//! rules see them, and the compile errors a developer gets.

use super::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;

fn rule(source: &str) -> Rule {
    Rule::compile(source).unwrap_or_else(|e| panic!("{source:?} should compile:\n{e}"))
}

fn user(uid: &str) -> Value {
    json!({"uid": uid, "email": format!("{uid}@example.com"), "claims": {"role": "user"}})
}

fn doc(owner: &str, data: Value) -> Value {
    json!({"id": "d1", "owner": owner, "created": 1, "updated": 1, "version": 1, "data": data})
}

/// Evaluates `source` with only `doc` set to a document whose data is `data`.
fn on_data(source: &str, data: Value) -> Result<bool, EvalError> {
    let d = doc("alice", data);
    rule(source).allows(&Context {
        doc: Some(&d),
        ..Context::default()
    })
}

fn syntax_error(source: &str) -> Vec<Diagnostic> {
    match Rule::compile(source) {
        Err(RuleError::Syntax(all)) => all,
        other => panic!("{source:?}: expected a syntax error, got {other:?}"),
    }
}

#[test]
fn owner_rule_allows_only_the_owner() {
    let owner = rule("auth != null && doc.owner == auth.uid");
    let d = doc("alice", json!({}));
    let (alice, bob) = (user("alice"), user("bob"));
    let ctx = |auth| Context {
        auth,
        doc: Some(&d),
        data: None,
    };
    // Anonymous: `auth != null` is false and `&&` stops there, so `auth.uid` is never read.
    assert_eq!(owner.allows(&ctx(None)), Ok(false));
    assert_eq!(owner.allows(&ctx(Some(&alice))), Ok(true));
    assert_eq!(owner.allows(&ctx(Some(&bob))), Ok(false));
}

#[test]
fn guard_works_in_either_order() {
    // CEL's && is commutative over errors: `<error> && false` is false, not an error.
    let reversed = rule("doc.owner == auth.uid && auth != null");
    let d = doc("alice", json!({}));
    let ctx = Context {
        doc: Some(&d),
        ..Context::default()
    };
    assert_eq!(reversed.allows(&ctx), Ok(false));
}

#[test]
fn field_of_null_is_an_error_not_false() {
    let d = doc("alice", json!({}));
    let ctx = Context {
        doc: Some(&d),
        ..Context::default()
    };
    assert_eq!(
        rule("doc.owner == auth.uid").allows(&ctx),
        Err(EvalError::FieldOfNull)
    );
    assert_eq!(
        rule("auth['uid'] == 'x'").allows(&ctx),
        Err(EvalError::FieldOfNull)
    );
}

#[test]
fn incoming_data_title_length() {
    let r = rule("data.title.size() < 100");
    let check = |data: Value| {
        r.allows(&Context {
            data: Some(&data),
            ..Context::default()
        })
    };
    assert_eq!(check(json!({"title": "hello"})), Ok(true));
    assert_eq!(
        check(json!({"title": "é".repeat(99)})),
        Ok(true),
        "size() counts characters"
    );
    assert_eq!(check(json!({"title": "x".repeat(100)})), Ok(false));
    assert_eq!(
        check(json!({"body": "no title"})),
        Err(EvalError::MissingField {
            field: "title".into()
        })
    );
    assert_eq!(r.allows(&Context::default()), Err(EvalError::FieldOfNull));
}

#[test]
fn admin_claim() {
    let r = rule(r#"auth.claims.role == "admin""#);
    let admin = json!({"uid": "root", "email": "r@example.com", "claims": {"role": "admin"}});
    let plain = user("alice");
    let ctx = |auth| Context {
        auth,
        ..Context::default()
    };
    assert_eq!(r.allows(&ctx(Some(&admin))), Ok(true));
    assert_eq!(r.allows(&ctx(Some(&plain))), Ok(false));
    assert_eq!(r.allows(&ctx(None)), Err(EvalError::FieldOfNull));
}

#[test]
fn function_auth_expression_with_only_auth() {
    // A function's `auth = "<CEL>"` key: the same Rule, with doc and data left null.
    let r = rule(r#"auth != null && "ops" in auth.claims.groups && doc == null"#);
    let ops = json!({"uid": "u", "email": "u@example.com", "claims": {"groups": ["dev", "ops"]}});
    let ctx = Context {
        auth: Some(&ops),
        ..Context::default()
    };
    assert_eq!(r.allows(&ctx), Ok(true));
    assert_eq!(r.allows(&Context::default()), Ok(false));
}

#[test]
fn numbers_compare_across_int_and_double() {
    let at_least_two = "doc.data.n >= 2";
    assert_eq!(on_data(at_least_two, json!({"n": 1})), Ok(false));
    assert_eq!(on_data(at_least_two, json!({"n": 2})), Ok(true));
    assert_eq!(on_data(at_least_two, json!({"n": 3})), Ok(true));
    assert_eq!(on_data(at_least_two, json!({"n": 1.5})), Ok(false));
    assert_eq!(on_data(at_least_two, json!({"n": 2.0})), Ok(true));
    assert_eq!(on_data(at_least_two, json!({"n": 2.5})), Ok(true));
    assert_eq!(on_data("doc.data.n >= 2.0", json!({"n": 2})), Ok(true));
    assert_eq!(on_data("doc.data.n > -1", json!({"n": -0.5})), Ok(true));
    // Equality is numeric too: JSON 2.0 is a double, and equals the int 2.
    assert_eq!(on_data("doc.data.n == 2", json!({"n": 2.0})), Ok(true));
    assert_eq!(on_data("doc.data.n == 2u", json!({"n": 2})), Ok(true));
    // Beyond i64: a double, still comparable.
    assert_eq!(on_data("doc.data.n > 1", json!({"n": u64::MAX})), Ok(true));
}

#[test]
fn arithmetic_does_not_mix_int_and_double() {
    // JSON integers are ints, so arithmetic with int literals works...
    assert_eq!(on_data("doc.data.n + 1 == 3", json!({"n": 2})), Ok(true));
    // ...but a JSON 2.5 is a double, and CEL refuses double + int.
    assert!(matches!(
        on_data("doc.data.n + 1 > 3", json!({"n": 2.5})),
        Err(EvalError::Failed { .. })
    ));
    assert_eq!(on_data("doc.data.n + 1.0 > 3", json!({"n": 2.5})), Ok(true));
}

#[test]
fn in_lists() {
    let r = r#"doc.data.tag in ["a", "b"]"#;
    assert_eq!(on_data(r, json!({"tag": "a"})), Ok(true));
    assert_eq!(on_data(r, json!({"tag": "b"})), Ok(true));
    assert_eq!(on_data(r, json!({"tag": "c"})), Ok(false));
    // `in` on a JSON array, and on a JSON object (its keys).
    assert_eq!(
        on_data(r#""x" in doc.data.tags"#, json!({"tags": ["x", "y"]})),
        Ok(true)
    );
    assert_eq!(
        on_data(r#""z" in doc.data.tags"#, json!({"tags": ["x", "y"]})),
        Ok(false)
    );
    assert_eq!(
        on_data(r#""tags" in doc.data"#, json!({"tags": []})),
        Ok(true)
    );
    // Numeric membership is numeric: 2 is in [2.0].
    assert_eq!(
        on_data("doc.data.n in [1.0, 2.0]", json!({"n": 2})),
        Ok(true)
    );
}

#[test]
fn comprehensions_and_their_variables() {
    let tags = json!({"tags": ["a", "b"]});
    assert_eq!(
        on_data(r#"doc.data.tags.all(t, t != "")"#, tags.clone()),
        Ok(true)
    );
    assert_eq!(
        on_data(r#"doc.data.tags.exists(t, t == "b")"#, tags.clone()),
        Ok(true)
    );
    assert_eq!(
        on_data("doc.data.tags.map(t, t + t) == ['aa', 'bb']", tags),
        Ok(true)
    );
}

#[test]
fn field_paths_follow_cel_selection() {
    // Variables answer whole paths (`doc.data.a.b`) from the JSON; these check that every
    // other case still behaves as selecting field by field would.
    let data = json!({"a": {"b": 1}, "a.b": 2, "s": "text", "z": null});
    assert_eq!(on_data("doc.data.a.b == 1", data.clone()), Ok(true));
    assert_eq!(on_data(r#"doc.data["a.b"] == 2"#, data.clone()), Ok(true));
    assert_eq!(on_data("doc.data.a == {'b': 1}", data.clone()), Ok(true));
    assert_eq!(on_data("{'b': 1} == doc.data.a", data.clone()), Ok(true));
    assert_eq!(
        on_data("has(doc.data.a.b) && !has(doc.data.a.c)", data.clone()),
        Ok(true)
    );
    assert_eq!(on_data("doc.data.z == null", data.clone()), Ok(true));
    assert_eq!(
        on_data("doc.data.a.c == 1", data.clone()),
        Err(EvalError::MissingField { field: "c".into() })
    );
    assert_eq!(
        on_data("doc.data.z.y == 1", data.clone()),
        Err(EvalError::FieldOfNull)
    );
    assert!(matches!(
        on_data("doc.data.s.length == 4", data.clone()),
        Err(EvalError::Failed { .. })
    ));
    // A comprehension variable shadows a rule variable of the same name inside it.
    assert_eq!(on_data("[1, 2].all(doc, doc > 0)", data), Ok(true));
    // `data` (the incoming object) is its own variable, apart from `doc.data`.
    let stored = doc("alice", json!({"n": 1}));
    let incoming = json!({"n": 2});
    let ctx = Context {
        auth: None,
        doc: Some(&stored),
        data: Some(&incoming),
    };
    assert_eq!(rule("data.n == doc.data.n + 1").allows(&ctx), Ok(true));
}

#[test]
fn missing_field_is_an_error_never_true() {
    let missing = Err(EvalError::MissingField {
        field: "nope".into(),
    });
    assert_eq!(on_data("doc.nope == 1", json!({})), missing);
    assert_eq!(on_data("doc.nope != 1", json!({})), missing);
    assert_eq!(on_data("!(doc.nope == 1)", json!({})), missing);
    assert_eq!(on_data("doc.data.nope == 1", json!({})), missing);
    // has() tests for presence without failing.
    assert_eq!(on_data("has(doc.data.nope)", json!({})), Ok(false));
    assert_eq!(
        on_data("!has(doc.data.nope) || doc.data.nope == 1", json!({})),
        Ok(true)
    );
    // The one way an error can end up true: `||` with a side that is true on its own, which
    // is the rule's own answer whatever the field.
    assert_eq!(on_data("doc.nope == 1 || true", json!({})), Ok(true));
}

#[test]
fn non_bool_result_is_an_error_naming_the_type() {
    let not_bool = |got| Err(EvalError::NotBool { got });
    assert_eq!(on_data("doc.owner", json!({})), not_bool("string"));
    assert_eq!(on_data("doc.version", json!({})), not_bool("int"));
    assert_eq!(on_data("doc.data.f", json!({"f": 0.5})), not_bool("double"));
    assert_eq!(on_data("doc.data", json!({})), not_bool("map"));
    assert_eq!(on_data("doc.data.l", json!({"l": []})), not_bool("list"));
    assert_eq!(on_data("auth", json!({})), not_bool("null"));
    let message = on_data("doc.owner", json!({})).unwrap_err().to_string();
    assert!(
        message.contains("string") && message.contains("not a bool"),
        "{message}"
    );
}

#[test]
fn other_evaluation_errors() {
    assert!(matches!(
        on_data("doc.data.n > 'a'", json!({"n": 1})),
        Err(EvalError::Failed { .. })
    ));
    // Unknown functions compile (this crate checks variables only) and fail when run.
    // `matches()` is one: the `regex` feature of `cel` is off.
    assert!(matches!(
        on_data("nope(doc)", json!({})),
        Err(EvalError::Failed { .. })
    ));
    assert!(matches!(
        on_data("doc.owner.matches('^a')", json!({})),
        Err(EvalError::Failed { .. })
    ));
}

#[test]
fn syntax_errors_name_line_and_column() {
    let all = syntax_error("auth != null &&");
    assert_eq!((all[0].line, all[0].column), (1, 16));
    assert!(all[0].message.contains("expecting"), "{}", all[0].message);

    let all = syntax_error("1 +* 2");
    assert_eq!((all[0].line, all[0].column), (1, 4));
    assert!(all[0].message.contains("'*'"), "{}", all[0].message);

    let all = syntax_error("doc.owner ==\n  (1 +");
    assert_eq!((all[0].line, all[0].column), (2, 7));
    assert_eq!(all[0].source_line, "  (1 +");

    // Columns count characters, not bytes.
    let all = syntax_error("doc.x == 'é' &&& 1");
    assert_eq!((all[0].line, all[0].column), (1, 16));
}

#[test]
fn syntax_error_display_shows_the_line_and_a_caret() {
    let err = Rule::compile("auth != null &&").unwrap_err();
    let text = err.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("1:16: "), "{text}");
    assert_eq!(lines[1], "  | auth != null &&");
    assert_eq!(lines[2], format!("  | {}^", " ".repeat(15)));
}

#[test]
fn empty_rule() {
    assert_eq!(Rule::compile("").unwrap_err(), RuleError::Empty);
    assert_eq!(Rule::compile(" \n\t").unwrap_err(), RuleError::Empty);
}

#[test]
fn unknown_variables_are_rejected_at_compile_time() {
    let err = Rule::compile("uath.uid == doc.owner").unwrap_err();
    assert_eq!(
        err.to_string().lines().next(),
        Some("1:1: unknown variable `uath`; rules can use auth, doc, data")
    );
    let RuleError::UnknownVariable(d) = Rule::compile("auth != null && 'é' == user").unwrap_err()
    else {
        panic!("expected an unknown variable");
    };
    assert_eq!((d.line, d.column), (1, 24));
    // A comprehension variable is bound only inside its comprehension.
    assert!(Rule::compile("doc.data.tags.all(t, t != '') && t == 'a'").is_err());
    assert!(Rule::compile("[1].map(x, y) == [1]").is_err());
    // Field names are not variables.
    rule("doc.data.uath == data.user && has(doc.data.y)");
}

#[test]
fn sources_are_kept_verbatim() {
    let source = "  auth != null // signed in\n";
    assert_eq!(rule(source).source(), source);
}

#[test]
fn operations_parse_and_display() {
    for op in Operation::ALL {
        assert_eq!(op.to_string().parse::<Operation>(), Ok(op));
    }
    assert_eq!(
        Operation::ALL.map(Operation::as_str),
        ["list", "get", "create", "update", "delete"]
    );
    let err = "List".parse::<Operation>().unwrap_err();
    assert_eq!(err.name, "List");
    assert!(
        err.to_string()
            .contains("list, get, create, update, delete")
    );
}

fn table(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
    entries
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn collection_rules_compile_and_deny_missing_operations() {
    let map = table(&[
        ("get", "true"),
        ("update", "auth != null && doc.owner == auth.uid"),
    ]);
    let rules = CollectionRules::compile(&map).unwrap();
    assert_eq!(rules.get(Operation::Get).map(Rule::source), Some("true"));
    assert!(rules.get(Operation::Delete).is_none());
    assert_eq!(rules.sources(), map);

    let d = doc("alice", json!({}));
    let alice = user("alice");
    let ctx = Context {
        auth: Some(&alice),
        doc: Some(&d),
        data: None,
    };
    assert_eq!(rules.allows(Operation::Update, &ctx), Ok(true));
    assert_eq!(rules.allows(Operation::Delete, &ctx), Ok(false));

    let none = CollectionRules::compile(&BTreeMap::new()).unwrap();
    assert!(Operation::ALL.into_iter().all(|op| none.get(op).is_none()));
}

#[test]
fn unknown_operation_key() {
    let err = CollectionRules::compile(&table(&[("get", "true"), ("lst", "true")])).unwrap_err();
    assert_eq!(
        err.problems,
        [RulesProblem::UnknownOperation { key: "lst".into() }]
    );
    assert_eq!(
        err.to_string(),
        "rules.lst: unknown operation `lst`; valid operations are list, get, create, update, delete"
    );
}

#[test]
fn every_problem_is_reported_with_its_operation() {
    let err = CollectionRules::compile(&table(&[
        ("update", "auth != null &&"),
        ("get", "uath.uid == doc.owner"),
        ("read", "true"),
        ("list", "true"),
    ]))
    .unwrap_err();
    assert_eq!(err.problems.len(), 3);
    let text = err.to_string();
    let firsts: Vec<&str> = text.lines().filter(|l| !l.starts_with("  |")).collect();
    assert_eq!(firsts.len(), 3, "{text}");
    assert!(
        firsts[0].starts_with("rules.read: unknown operation"),
        "{text}"
    );
    assert!(
        firsts[1].starts_with("rules.get: 1:1: unknown variable `uath`"),
        "{text}"
    );
    assert!(
        firsts[2].starts_with("rules.update: 1:16: Syntax error"),
        "{text}"
    );
}

#[test]
fn rules_are_shareable() {
    fn shareable<T: Send + Sync + Clone + 'static>() {}
    shareable::<Rule>();
    shareable::<CollectionRules>();
}

fn pinned(fields: &[(&str, Value)]) -> Pinned {
    let mut pinned = Pinned::new();
    for (path, value) in fields {
        pinned.pin(*path, value.clone());
    }
    pinned
}

#[test]
fn owner_rules_need_the_owner_in_the_query() {
    let owner = rule("auth != null && doc.owner == auth.uid");
    let alice = user("alice");
    assert_eq!(
        owner.holds_for_query(Some(&alice), &pinned(&[("owner", json!("alice"))])),
        QueryVerdict::Holds
    );
    assert_eq!(
        owner.holds_for_query(Some(&alice), &pinned(&[("owner", json!("bob"))])),
        QueryVerdict::Denied
    );
    // Fixing other fields does not bound the owner.
    assert_eq!(
        owner.holds_for_query(Some(&alice), &pinned(&[("data.pin", json!("4821"))])),
        QueryVerdict::Unbounded(vec!["doc.owner".into()])
    );
    // Anonymous: denied whatever the query, before any document is read.
    assert_eq!(
        owner.holds_for_query(None, &Pinned::new()),
        QueryVerdict::Denied
    );
}

#[test]
fn query_verdicts_follow_cel_logic_not_the_data() {
    let alice = user("alice");
    let either = rule("doc.data.public == true || (auth != null && doc.owner == auth.uid)");
    assert_eq!(
        either.holds_for_query(Some(&alice), &pinned(&[("owner", json!("alice"))])),
        QueryVerdict::Holds,
        "the owner side decides alone"
    );
    assert_eq!(
        either.holds_for_query(None, &pinned(&[("data.public", json!(true))])),
        QueryVerdict::Holds
    );
    match either.holds_for_query(Some(&alice), &Pinned::new()) {
        QueryVerdict::Unbounded(read) => {
            assert!(read.contains(&"doc.data.public".to_string()), "{read:?}")
        }
        other => panic!("{other:?}"),
    }
    // Each field the rule reads is named once, however often it reads it.
    let twice = rule("doc.owner == auth.uid || (doc.data.n > 1 && doc.owner == \"x\")");
    assert_eq!(
        twice.holds_for_query(Some(&alice), &Pinned::new()),
        QueryVerdict::Unbounded(vec!["doc.owner".into(), "doc.data.n".into()])
    );
    // Rules that do not read doc decide on auth alone.
    let signed_in = rule("auth != null");
    assert_eq!(
        signed_in.holds_for_query(Some(&alice), &Pinned::new()),
        QueryVerdict::Holds
    );
    assert_eq!(
        signed_in.holds_for_query(None, &Pinned::new()),
        QueryVerdict::Denied
    );
    // Whole-object reads and has() on unfixed fields cannot hold for every document.
    for source in [
        "!has(doc.data.secret)",
        "size(doc.data) < 3",
        "doc.data.tags.all(t, t != \"x\")",
        "doc != null",
    ] {
        assert!(
            matches!(
                rule(source).holds_for_query(Some(&alice), &pinned(&[("data.n", json!(1))])),
                QueryVerdict::Unbounded(_)
            ),
            "{source}"
        );
    }
    // A false side fixed by the query denies the whole conjunction.
    let both = rule("doc.data.open == true && doc.owner == auth.uid");
    assert_eq!(
        both.holds_for_query(Some(&alice), &pinned(&[("data.open", json!(false))])),
        QueryVerdict::Denied
    );
}
