//! Quota tests: validation, each cap's warning and exceeded states, and the cost cap's two
//! meanings (net of the free tier globally, list price per function).

use std::str::FromStr;

use super::*;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

const GB_S: u64 = 1_024_000;

fn quota() -> Quota {
    Quota::default()
}

#[test]
fn validation_names_the_field() {
    assert_eq!(quota().validate(), Err(QuotaError::NoCap));
    let q = Quota {
        requests: Some(0),
        ..quota()
    };
    assert_eq!(
        q.validate(),
        Err(QuotaError::NotPositive {
            field: "requests",
            value: "0".into()
        })
    );
    let q = Quota {
        gb_seconds: Some(d("-1")),
        ..quota()
    };
    assert_eq!(
        q.validate().unwrap_err().to_string(),
        "quota gb_seconds must be greater than 0, not -1; leave it out for no cap"
    );
    let q = Quota {
        cost: Some(Decimal::ZERO),
        ..quota()
    };
    assert_eq!(
        q.validate(),
        Err(QuotaError::NotPositive {
            field: "cost",
            value: "0".into()
        })
    );
    let q = Quota {
        requests: Some(5),
        warn_percent: 0,
        ..quota()
    };
    assert_eq!(q.validate(), Err(QuotaError::WarnPercent(0)));
    let q = Quota {
        requests: Some(5),
        warn_percent: 101,
        ..quota()
    };
    assert_eq!(
        q.validate().unwrap_err().to_string(),
        "quota warn_percent must be from 1 to 100, not 101"
    );
    let q = Quota {
        cost: Some(d("5")),
        warn_percent: 100,
        ..quota()
    };
    assert_eq!(q.validate(), Ok(()));
}

#[test]
fn json_shape() {
    let q: Quota = serde_json::from_str(r#"{"gb_seconds":"400","cost":"5.00"}"#).unwrap();
    assert_eq!(q.gb_seconds, Some(d("400")));
    assert_eq!(q.cost.unwrap().to_string(), "5.00");
    assert_eq!(q.requests, None);
    assert_eq!(q.warn_percent, 80);
    assert_eq!(
        serde_json::to_string(&q).unwrap(),
        r#"{"gb_seconds":"400","cost":"5.00","warn_percent":80}"#
    );
    let q: Quota = serde_json::from_str(r#"{"requests":1000,"warn_percent":90}"#).unwrap();
    assert_eq!(
        q,
        Quota {
            requests: Some(1_000),
            warn_percent: 90,
            ..quota()
        }
    );
    assert!(serde_json::from_str::<Quota>(r#"{"request":1}"#).is_err());
}

#[test]
fn requests_cap() {
    let q = Quota {
        requests: Some(1_000),
        ..quota()
    };
    let check = QuotaCheck::new(QuotaScope::Function("f".into()), &q, &Prices::default());
    assert_eq!(check.scope(), &QuotaScope::Function("f".into()));
    assert_eq!(check.state(0, 0), QuotaState::Below);
    assert_eq!(check.state(799, 0), QuotaState::Below);
    assert_eq!(
        check.state(800, 0),
        QuotaState::Warning {
            kind: QuotaKind::Requests,
            used_percent: 80
        }
    );
    assert_eq!(
        check.state(999, 0),
        QuotaState::Warning {
            kind: QuotaKind::Requests,
            used_percent: 99
        }
    );
    assert_eq!(
        check.state(1_000, 0),
        QuotaState::Exceeded {
            kind: QuotaKind::Requests,
            cap: "1,000 requests".into(),
            used: "1,000 requests".into(),
        }
    );
    // 80% of 7 is 5.6: the warning starts at 6.
    let q = Quota {
        requests: Some(7),
        ..quota()
    };
    let check = QuotaCheck::new(QuotaScope::Global, &q, &Prices::default());
    assert_eq!(check.state(5, 0), QuotaState::Below);
    assert_eq!(
        check.state(6, 0),
        QuotaState::Warning {
            kind: QuotaKind::Requests,
            used_percent: 85
        }
    );
}

#[test]
fn gb_seconds_cap() {
    let q = Quota {
        gb_seconds: Some(d("400")),
        ..quota()
    };
    let check = QuotaCheck::new(QuotaScope::Global, &q, &Prices::default());
    // 320 GB-s is 80%.
    assert_eq!(check.state(0, 320 * GB_S - 1), QuotaState::Below);
    assert_eq!(
        check.state(0, 320 * GB_S),
        QuotaState::Warning {
            kind: QuotaKind::GbSeconds,
            used_percent: 80
        }
    );
    assert_eq!(
        check.state(0, 400 * GB_S - 1),
        QuotaState::Warning {
            kind: QuotaKind::GbSeconds,
            used_percent: 99
        }
    );
    assert_eq!(
        check.state(0, 400 * GB_S + 512_000),
        QuotaState::Exceeded {
            kind: QuotaKind::GbSeconds,
            cap: "400 GB-seconds".into(),
            used: "400.5 GB-seconds".into(),
        }
    );
    // A cap that is not a whole number of MB-ms: 0.0000001 GB-s is 0.1024 MB-ms, so any
    // usage at all (1 MB-ms) reaches it.
    let q = Quota {
        gb_seconds: Some(d("0.0000001")),
        ..quota()
    };
    let check = QuotaCheck::new(QuotaScope::Global, &q, &Prices::default());
    assert_eq!(check.state(5, 0), QuotaState::Below);
    assert!(matches!(
        check.state(0, 1),
        QuotaState::Exceeded {
            kind: QuotaKind::GbSeconds,
            ..
        }
    ));
}

#[test]
fn cost_cap_is_net_globally_and_list_per_function() {
    let q = Quota {
        cost: Some(d("5")),
        ..quota()
    };
    let prices = Prices::default();
    // 2,000,000 requests and 800,000 GB-s: list 0.40 + 13.33336 = 13.73336, net after the
    // free tier 0.20 + 6.66668 = 6.86668. Both over $5.
    let global = QuotaCheck::new(QuotaScope::Global, &q, &prices);
    let function = QuotaCheck::new(QuotaScope::Function("f".into()), &q, &prices);
    assert_eq!(
        global.state(2_000_000, 800_000 * GB_S),
        QuotaState::Exceeded {
            kind: QuotaKind::Cost,
            cap: "$5.00".into(),
            used: "$6.87".into()
        }
    );
    assert_eq!(
        function.state(2_000_000, 800_000 * GB_S),
        QuotaState::Exceeded {
            kind: QuotaKind::Cost,
            cap: "$5.00".into(),
            used: "$13.73".into()
        }
    );
    // 400,000 GB-s and no requests: all free globally; at list price 400,000 × 0.0000166667
    // = 6.66668, over $5 for a function.
    assert_eq!(global.state(0, 400_000 * GB_S), QuotaState::Below);
    assert!(matches!(
        function.state(0, 400_000 * GB_S),
        QuotaState::Exceeded {
            kind: QuotaKind::Cost,
            ..
        }
    ));
    // Globally, 640,000 GB-s: 240,000 billable × 0.0000166667 = 4.000008, 80% of $5.
    assert_eq!(
        global.state(0, 640_000 * GB_S),
        QuotaState::Warning {
            kind: QuotaKind::Cost,
            used_percent: 80
        }
    );
    // 639,000 GB-s: 239,000 × 0.0000166667 = 3.9833413, under $4.
    assert_eq!(global.state(0, 639_000 * GB_S), QuotaState::Below);
}

#[test]
fn highest_warning_and_first_exceeded_win() {
    let q = Quota {
        requests: Some(100),
        gb_seconds: Some(d("10")),
        cost: Some(d("1000")),
        warn_percent: 50,
    };
    let check = QuotaCheck::new(QuotaScope::Global, &q, &Prices::default());
    // Requests at 60%, GB-s at 90%: GB-s is reported.
    assert_eq!(
        check.state(60, 9 * GB_S),
        QuotaState::Warning {
            kind: QuotaKind::GbSeconds,
            used_percent: 90
        }
    );
    assert_eq!(
        check.state(95, 9 * GB_S),
        QuotaState::Warning {
            kind: QuotaKind::Requests,
            used_percent: 95
        }
    );
    // Both exceeded: requests first.
    assert!(matches!(
        check.state(100, 10 * GB_S),
        QuotaState::Exceeded {
            kind: QuotaKind::Requests,
            ..
        }
    ));
    assert!(matches!(
        check.state(10, 10 * GB_S),
        QuotaState::Exceeded {
            kind: QuotaKind::GbSeconds,
            ..
        }
    ));
    assert_eq!(QuotaKind::GbSeconds.as_str(), "gb_seconds");
    assert_eq!(QuotaKind::Requests.as_str(), "requests");
    assert_eq!(QuotaKind::Cost.as_str(), "cost");
}
