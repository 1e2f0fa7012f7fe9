//! The listing's query string (`where`, `sort`, `limit`, `cursor`) and the in-memory
//! evaluation of the same filters for realtime subscriptions, with the SQL's semantics:
//! a missing field and JSON null are both null; only `= null` / `!= null` match on null;
//! numbers compare as numbers and strings as strings, and a comparison across types
//! never matches.

use std::cmp::Ordering;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gureum_store::{Cursor, DocQuery, DocumentRow, FieldPath, Filter, FilterOp};
use serde_json::Value;

/// Default and largest page size.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest `limit`.
pub const MAX_LIMIT: u32 = 1000;
/// Most `where` conditions per query.
pub const MAX_FILTERS: usize = 16;
/// Most values in an `in` list.
pub const MAX_IN_VALUES: usize = 100;

/// Parses one `where` condition: `FIELD OP VALUE`, VALUE JSON or a bare word (a string).
pub fn parse_condition(text: &str) -> Result<Filter, String> {
    let text = text.trim();
    let field_end = text
        .find(|c: char| c.is_whitespace() || "=!<>".contains(c))
        .ok_or_else(|| {
            format!(
                "where={text:?}: expected FIELD OP VALUE, e.g. where=done = false or where=tag in [\"a\",\"b\"]"
            )
        })?;
    let (field, rest) = text.split_at(field_end);
    let field = FieldPath::parse(field).map_err(|error| format!("where={text:?}: {error}"))?;
    let rest = rest.trim_start();
    let (op, value) = [
        ("!=", FilterOp::Ne),
        ("<=", FilterOp::Le),
        (">=", FilterOp::Ge),
        ("=", FilterOp::Eq),
        ("<", FilterOp::Lt),
        (">", FilterOp::Gt),
        ("in ", FilterOp::In),
    ]
    .iter()
    .find_map(|(symbol, op)| rest.strip_prefix(symbol).map(|value| (*op, value.trim())))
    .ok_or_else(|| format!("where={text:?}: the operator must be one of = != < <= > >= in"))?;
    if value.is_empty() {
        return Err(format!(
            "where={text:?}: a value is missing after the operator"
        ));
    }
    let value = match serde_json::from_str::<Value>(value) {
        Ok(value) => value,
        Err(_)
            if !value.contains(['"', '[', ']', '{', '}'])
                && !value.contains(char::is_whitespace) =>
        {
            Value::String(value.to_string())
        }
        Err(error) => {
            return Err(format!(
                "where={text:?}: the value is not JSON ({error}); quote strings with spaces, e.g. \"two words\""
            ));
        }
    };
    match (&op, &value) {
        (FilterOp::In, Value::Array(items)) if items.len() > MAX_IN_VALUES => {
            return Err(format!(
                "where={text:?}: at most {MAX_IN_VALUES} values in a list"
            ));
        }
        (FilterOp::In, Value::Array(items))
            if items
                .iter()
                .any(|v| v.is_array() || v.is_object() || v.is_null()) =>
        {
            return Err(format!(
                "where={text:?}: `in` lists hold strings, numbers or booleans"
            ));
        }
        (FilterOp::In, Value::Array(_)) => {}
        (FilterOp::In, _) => {
            return Err(format!(
                "where={text:?}: `in` takes a JSON array, e.g. [\"a\",\"b\"]"
            ));
        }
        (FilterOp::Eq | FilterOp::Ne, _) => {}
        (_, Value::Null) => {
            return Err(format!(
                "where={text:?}: null can only be compared with = or !="
            ));
        }
        (_, Value::Array(_) | Value::Object(_)) => {
            return Err(format!(
                "where={text:?}: < <= > >= compare numbers or strings"
            ));
        }
        _ => {}
    }
    check_field_type(&field, &value).map_err(|error| format!("where={text:?}: {error}"))?;
    Ok(Filter { field, op, value })
}

fn check_field_type(field: &FieldPath, value: &Value) -> Result<(), String> {
    let values: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    for value in values {
        let ok = match field {
            FieldPath::Id => value.is_string(),
            FieldPath::Owner => value.is_string() || value.is_null(),
            FieldPath::Created | FieldPath::Updated => value.is_i64(),
            FieldPath::Data(_) => true,
        };
        if !ok {
            let expected = match field {
                FieldPath::Created | FieldPath::Updated => "a time in ms since the epoch",
                _ => "a string",
            };
            return Err(format!("{} is {expected}; got {value}", field.text()));
        }
    }
    Ok(())
}

/// A listing request parsed from the query string's pairs.
#[derive(Debug, Clone, PartialEq)]
pub struct Listing {
    /// The store query (cursor included).
    pub query: DocQuery,
}

/// Parses `where` (repeatable), `sort`, `limit`, `cursor`; other parameters are refused
/// by name (except `access_token`).
pub fn parse_listing(pairs: &[(String, String)]) -> Result<Listing, String> {
    let mut filters = Vec::new();
    let mut sort = FieldPath::Created;
    let mut descending = false;
    let mut limit = DEFAULT_LIMIT;
    let mut cursor_text = None;
    for (key, value) in pairs {
        match key.as_str() {
            "where" => filters.push(parse_condition(value)?),
            "sort" => {
                let (field, desc) = match value.strip_prefix('-') {
                    Some(field) => (field, true),
                    None => (value.strip_prefix('+').unwrap_or(value), false),
                };
                sort = FieldPath::parse(field).map_err(|error| format!("sort: {error}"))?;
                descending = desc;
            }
            "limit" => {
                limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        format!("limit={value:?}: use a number from 1 to {MAX_LIMIT}")
                    })?;
            }
            "cursor" => cursor_text = Some(value.clone()),
            "access_token" => {}
            other => {
                return Err(format!(
                    "unknown query parameter {other:?}; use where, sort, limit, cursor"
                ));
            }
        }
    }
    if filters.len() > MAX_FILTERS {
        return Err(format!("at most {MAX_FILTERS} where conditions"));
    }
    let after = cursor_text
        .map(|text| decode_cursor(&text, &sort, descending))
        .transpose()?;
    Ok(Listing {
        query: DocQuery {
            filters,
            sort,
            descending,
            limit,
            after,
        },
    })
}

/// The opaque cursor after `row`: its sort value and id, bound to the sort it came from.
pub fn encode_cursor(query: &DocQuery, row: &DocumentRow) -> String {
    let value = serde_json::json!([
        query.sort.text(),
        query.descending,
        query.sort.value_in(row),
        row.id
    ]);
    URL_SAFE_NO_PAD.encode(value.to_string())
}

fn decode_cursor(text: &str, sort: &FieldPath, descending: bool) -> Result<Cursor, String> {
    let bad = || "cursor: not a cursor this listing returned; start again without it".to_string();
    let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| bad())?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let [field, desc, sort_value, id] = value.as_array().map(Vec::as_slice).unwrap_or(&[]) else {
        return Err(bad());
    };
    if field.as_str() != Some(sort.text().as_str()) || desc.as_bool() != Some(descending) {
        return Err(
            "cursor: it belongs to a listing with another sort; keep sort the same while paging"
                .into(),
        );
    }
    check_field_type(sort, sort_value).map_err(|_| bad())?;
    Ok(Cursor {
        value: sort_value.clone(),
        id: id.as_str().ok_or_else(bad)?.to_string(),
    })
}

/// Whether `row` passes every filter (for realtime events).
pub fn matches(filters: &[Filter], row: &DocumentRow) -> bool {
    filters.iter().all(|filter| {
        let actual = filter.field.value_in(row);
        match (filter.op, &filter.value) {
            (FilterOp::Eq, Value::Null) => actual.is_null(),
            (FilterOp::Ne, Value::Null) => !actual.is_null(),
            (FilterOp::In, Value::Array(items)) => items
                .iter()
                .any(|item| compare(&actual, item) == Some(Ordering::Equal)),
            (op, expected) => match compare(&actual, expected) {
                None => false,
                Some(ordering) => match op {
                    FilterOp::Eq => ordering == Ordering::Equal,
                    FilterOp::Ne => ordering != Ordering::Equal,
                    FilterOp::Lt => ordering == Ordering::Less,
                    FilterOp::Le => ordering != Ordering::Greater,
                    FilterOp::Gt => ordering == Ordering::Greater,
                    FilterOp::Ge => ordering != Ordering::Less,
                    FilterOp::In => false,
                },
            },
        }
    })
}

/// SQL-like comparison: `None` when either side is null or the types differ.
fn compare(actual: &Value, expected: &Value) -> Option<Ordering> {
    match (actual, expected) {
        (Value::Number(a), Value::Number(b)) => a.as_f64()?.partial_cmp(&b.as_f64()?),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        (Value::Array(_), Value::Array(_)) | (Value::Object(_), Value::Object(_)) => {
            (actual == expected).then_some(Ordering::Equal)
        }
        _ => None,
    }
}

/// What `filters` fix in every document they match, as rule paths (`owner`, `data.a`):
/// one [`Pinned`] per alternative. `=` fixes a field; the first `in` over a field not fixed
/// by `=` gives one alternative per value. `null` values fix nothing (a missing field
/// matches `= null` too, and rules read the two differently).
pub(crate) fn pinned_alternatives(filters: &[Filter]) -> Vec<gureum_rules::Pinned> {
    let mut base = gureum_rules::Pinned::new();
    for filter in filters {
        if filter.op == FilterOp::Eq && !filter.value.is_null() {
            base.pin(rule_path(&filter.field), filter.value.clone());
        }
    }
    let spread = filters
        .iter()
        .find_map(|filter| match (&filter.op, &filter.value) {
            (FilterOp::In, Value::Array(values)) if !base.fixes(&rule_path(&filter.field)) => {
                Some((rule_path(&filter.field), values))
            }
            _ => None,
        });
    match spread {
        Some((path, values)) if !values.is_empty() => values
            .iter()
            .map(|value| {
                let mut one = base.clone();
                one.pin(path.clone(), value.clone());
                one
            })
            .collect(),
        _ => vec![base],
    }
}

/// A field as rules name it inside `doc`.
fn rule_path(field: &FieldPath) -> String {
    match field {
        FieldPath::Id => "id".into(),
        FieldPath::Owner => "owner".into(),
        FieldPath::Created => "created".into(),
        FieldPath::Updated => "updated".into(),
        FieldPath::Data(segments) => format!("data.{}", segments.join(".")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(data: Value) -> DocumentRow {
        DocumentRow {
            id: "d1".into(),
            owner: Some("u1".into()),
            created_at_ms: 10,
            updated_at_ms: 20,
            version: 1,
            data: data.to_string(),
        }
    }

    #[test]
    fn conditions_parse_with_clear_errors() {
        let filter = parse_condition("done = false").unwrap();
        assert_eq!((filter.op, filter.value), (FilterOp::Eq, json!(false)));
        assert_eq!(parse_condition("owner=abc").unwrap().value, json!("abc"));
        assert_eq!(parse_condition("n>=2.5").unwrap().op, FilterOp::Ge);
        assert_eq!(
            parse_condition("tag in [\"a\",\"b\"]").unwrap().op,
            FilterOp::In
        );
        assert_eq!(
            parse_condition("title = \"two words\"").unwrap().value,
            json!("two words")
        );
        for (bad, needle) in [
            ("done", "FIELD OP VALUE"),
            ("done ~ 1", "operator"),
            ("done =", "missing"),
            ("n < null", "null"),
            ("tag in \"a\"", "JSON array"),
            ("created = \"x\"", "ms since the epoch"),
            ("a'b = 1", "A-Z"),
            ("title = two words", "not JSON"),
        ] {
            let error = parse_condition(bad).unwrap_err();
            assert!(error.contains(needle), "{bad}: {error}");
        }
    }

    #[test]
    fn listing_and_cursors_round_trip() {
        let pairs = vec![
            ("where".to_string(), "n > 1".to_string()),
            ("sort".to_string(), "-n".to_string()),
            ("limit".to_string(), "5".to_string()),
        ];
        let listing = parse_listing(&pairs).unwrap();
        let cursor = encode_cursor(&listing.query, &row(json!({"n": 3})));
        let mut with_cursor = pairs.clone();
        with_cursor.push(("cursor".into(), cursor.clone()));
        let again = parse_listing(&with_cursor).unwrap();
        assert_eq!(again.query.after.unwrap().value, json!(3));
        let other_sort = vec![
            ("sort".to_string(), "n".to_string()),
            ("cursor".to_string(), cursor),
        ];
        assert!(
            parse_listing(&other_sort)
                .unwrap_err()
                .contains("another sort")
        );
        assert!(parse_listing(&[("limit".into(), "0".into())]).is_err());
        assert!(
            parse_listing(&[("filter".into(), "x".into())])
                .unwrap_err()
                .contains("where")
        );
    }

    #[test]
    fn in_memory_matching_follows_sql_semantics() {
        let doc = row(json!({"n": 2, "s": "b", "done": false, "none": null}));
        let check = |text: &str| matches(&[parse_condition(text).unwrap()], &doc);
        assert!(check("n = 2"));
        assert!(check("n = 2.0"));
        assert!(check("n < 3"));
        assert!(!check("n != 2"));
        assert!(!check("n = \"2\""), "types differ");
        assert!(check("s in [\"a\",\"b\"]"));
        assert!(check("done = false"));
        assert!(check("missing = null"));
        assert!(check("none = null"));
        assert!(!check("missing != 1"), "null never compares");
        assert!(check("owner = u1"));
        assert!(check("created >= 10"));
    }
}
