//! Shape check of `[[schedule]] cron` lines before croner reads them: its messages name
//! the field, its position and the valid range, which croner's errors do not.

/// The accepted forms, appended to every cron problem.
pub(crate) const FORMS: &str = "expected \"@every <duration>\" (at least 1s, e.g. \"@every 10s\", \"@every 5m\", \"@every 1h\"), one of @yearly, @monthly, @weekly, @daily, @hourly, 5 fields \"minute hour day-of-month month day-of-week\" or 6 fields \"second minute hour day-of-month month day-of-week\" made of numbers, names (JAN-DEC, SUN-SAT) and * / , -";

const MACROS: &[&str] = &["@yearly", "@monthly", "@weekly", "@daily", "@hourly"];
const MONTHS: &[&str] = &[
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: &[&str] = &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    /// Names accepted for the values `min`, `min + 1`, ...
    names: &'static [&'static str],
}

const SECOND: Field = Field::numeric("second", 0, 59);
const MINUTE: Field = Field::numeric("minute", 0, 59);
const HOUR: Field = Field::numeric("hour", 0, 23);
const DAY_OF_MONTH: Field = Field::numeric("day-of-month", 1, 31);
const MONTH: Field = Field {
    name: "month",
    min: 1,
    max: 12,
    names: MONTHS,
};
// 0 and 7 both mean Sunday, as in Vixie cron.
const DAY_OF_WEEK: Field = Field {
    name: "day-of-week",
    min: 0,
    max: 7,
    names: DAYS,
};

impl Field {
    const fn numeric(name: &'static str, min: u32, max: u32) -> Self {
        Self {
            name,
            min,
            max,
            names: &[],
        }
    }
}

/// Checks one cron line; the error says what is wrong (the caller adds [`FORMS`]).
pub(crate) fn check(line: &str) -> Result<(), String> {
    let line = line.trim();
    if line.starts_with('@') {
        return if MACROS.contains(&line) {
            Ok(())
        } else {
            Err(format!("unknown macro {line:?}"))
        };
    }
    let fields: Vec<&str> = line.split_whitespace().collect();
    let layout: &[Field] = match fields.len() {
        5 => &[MINUTE, HOUR, DAY_OF_MONTH, MONTH, DAY_OF_WEEK],
        6 => &[SECOND, MINUTE, HOUR, DAY_OF_MONTH, MONTH, DAY_OF_WEEK],
        n => return Err(format!("wrong number of fields ({n})")),
    };
    fields
        .iter()
        .zip(layout)
        .enumerate()
        .try_for_each(|(index, (text, field))| {
            check_field(text, field)
                .map_err(|reason| format!("field {} ({}): {reason}", index + 1, field.name))
        })
}

fn check_field(text: &str, field: &Field) -> Result<(), String> {
    for part in text.split(',') {
        let (base, step) = match part.split_once('/') {
            Some((base, step)) => (base, Some(step)),
            None => (part, None),
        };
        if let Some(step) = step
            && !step.parse::<u32>().is_ok_and(|n| n >= 1)
        {
            return Err(format!(
                "{} step {step:?} in {text:?} is not a positive number",
                field.name
            ));
        }
        if base == "*" {
            continue;
        }
        match base.split_once('-') {
            Some((low, high)) => {
                let (low_value, high_value) = (value(low, field)?, value(high, field)?);
                if low_value > high_value {
                    return Err(format!(
                        "{} range {base:?} goes backwards (write the smaller value first)",
                        field.name
                    ));
                }
            }
            None => {
                value(base, field)?;
            }
        }
    }
    Ok(())
}

fn value(text: &str, field: &Field) -> Result<u32, String> {
    let range = format!("{}-{}", field.min, field.max);
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return match text.parse::<u32>() {
            Ok(n) if (field.min..=field.max).contains(&n) => Ok(n),
            _ => Err(format!("{} {text} is out of range {range}", field.name)),
        };
    }
    let named = field
        .names
        .iter()
        .zip(field.min..)
        .find(|(name, _)| name.eq_ignore_ascii_case(text))
        .map(|(_, n)| n);
    named.ok_or_else(|| {
        let names = match field.names {
            [first, .., last] => format!(" or {first}-{last}"),
            _ => String::new(),
        };
        format!(
            "{} {text:?} is not valid (use {range}{names}, *, lists, ranges and steps)",
            field.name
        )
    })
}
