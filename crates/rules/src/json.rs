//! JSON values as CEL values, for the variables a rule reads.
//!
//! The conversion borrows from the JSON rather than copying it: strings and object keys are
//! CEL strings that point into the `serde_json::Value`, so a rule costs a few small
//! allocations for the map and list structure and no string copies. That is why this crate
//! converts by hand instead of using `cel`'s `json`/serde paths, which build owned values.

use cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString,
};
use cel::common::value::Val;
use serde_json::Value;
use std::collections::HashMap;

/// The CEL value of a JSON value: null → `null`, bool → `bool`, a number that fits an `i64`
/// → `int`, any other number → `double`, string → `string`, array → `list`, object → `map`
/// with string keys.
///
/// Integers become `int` (not `uint`, as serde's own number model would make of non-negative
/// ones) so that arithmetic with literals such as `doc.data.n + 1` type-checks: CEL does not
/// mix `int` and `uint` in arithmetic. Integers beyond `i64` become `double`, which only
/// loses precision past 2^53.
///
/// Recursion follows the JSON's nesting, which `serde_json` bounds (128 levels) when parsing.
pub(crate) fn to_val(value: &Value) -> Box<dyn Val + '_> {
    match value {
        Value::Null => Box::new(CelNull),
        Value::Bool(b) => Box::new(CelBool::from(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Box::new(CelInt::from(i)),
            // `as_f64` only fails for arbitrary-precision numbers that don't fit; NaN then
            // compares unequal to everything, so no rule can pass on it.
            None => Box::new(CelDouble::from(n.as_f64().unwrap_or(f64::NAN))),
        },
        Value::String(s) => Box::new(CelString::from(s.as_str())),
        Value::Array(items) => {
            Box::new(CelList::from(items.iter().map(to_val).collect::<Vec<_>>()))
        }
        Value::Object(fields) => Box::new(CelMap::from(
            fields
                .iter()
                .map(|(k, v)| (CelMapKey::from(k.as_str()), to_val(v)))
                .collect::<HashMap<_, _>>(),
        )),
    }
}
