//! Document store benchmark: list and get latency on a collection of 100,000 documents,
//! without and then with an index on the listed field, on SQLite and PostgreSQL (the
//! store API the `/data/v1` handlers call, so HTTP is not in the numbers). Prints a table
//! of p50/p99 per query kind. No benchmark peer (`benches/peers`, `wasmtime serve`)
//! stores documents, so the numbers are absolute.
//!
//! `cargo bench --bench documents [-- --docs 100000]`; without `--bench` (as `cargo test
//! --all-targets` runs it) it is a smoke run on 2,000 documents that checks the answers.

use std::time::{Duration, Instant};

use gureum_store::{DocQuery, DocumentRow, FieldPath, Filter, FilterOp, Store};
use serde_json::json;

const COLLECTION: &str = "bench";
/// Distinct values of the filtered field: each value matches docs / DISTINCT documents.
const DISTINCT: i64 = 1000;

fn args() -> (usize, bool) {
    let all: Vec<String> = std::env::args().collect();
    let measuring = all.iter().any(|arg| arg == "--bench");
    let docs = all
        .iter()
        .position(|arg| arg == "--docs")
        .and_then(|i| all.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(if measuring { 100_000 } else { 2_000 });
    (docs, measuring)
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index]
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

async fn fill(store: &Store, docs: usize) {
    let now = gureum_model::now_ms();
    let rows: Vec<DocumentRow> = (0..docs)
        .map(|i| {
            let i = i as i64;
            DocumentRow {
                id: format!("doc{i:08}"),
                owner: Some(format!("user{}", i % 500)),
                created_at_ms: now + i,
                updated_at_ms: now + i,
                version: 1,
                data: json!({"n": i % DISTINCT, "score": (i * 7919) % 100_003, "title": format!("document number {i}"), "tags": ["a", "b"]})
                    .to_string(),
            }
        })
        .collect();
    for chunk in rows.chunks(5_000) {
        store.insert_documents(COLLECTION, chunk).await.unwrap();
    }
}

fn by_n(k: i64) -> DocQuery {
    DocQuery {
        filters: vec![Filter {
            field: FieldPath::parse("n").unwrap(),
            op: FilterOp::Eq,
            value: json!(k),
        }],
        sort: FieldPath::parse("n").unwrap(),
        descending: false,
        limit: 50,
        after: None,
    }
}

fn top_scores() -> DocQuery {
    DocQuery {
        filters: vec![],
        sort: FieldPath::parse("score").unwrap(),
        descending: true,
        limit: 50,
        after: None,
    }
}

/// (p50, p99) of `rounds` runs of `query`.
async fn time<F, Fut>(rounds: usize, mut query: F) -> (Duration, Duration)
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut samples = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let started = Instant::now();
        query(round).await;
        samples.push(started.elapsed());
    }
    (
        percentile(&mut samples, 0.5),
        percentile(&mut samples, 0.99),
    )
}

async fn run(label: &str, store: &Store, docs: usize, rows: &mut Vec<[String; 6]>) {
    let filled = Instant::now();
    fill(store, docs).await;
    eprintln!(
        "{label}: {docs} documents stored in {:.1} s",
        filled.elapsed().as_secs_f64()
    );
    let expected = (docs as i64 / DISTINCT).min(50) as usize;
    for indexed in [false, true] {
        if indexed {
            let fields = [
                FieldPath::parse("n").unwrap(),
                FieldPath::parse("score").unwrap(),
            ];
            store
                .put_collection(COLLECTION, "{}", &fields, &[])
                .await
                .unwrap();
        }
        let plan = store
            .explain_document_query(COLLECTION, &by_n(1))
            .await
            .unwrap();
        assert_eq!(plan.contains("docidx_"), indexed, "{label}: {plan}");
        let rounds = if indexed { 400 } else { 40 };
        let (p50, p99) = time(rounds, |round| {
            let store = store.clone();
            async move {
                let found = store
                    .query_documents(COLLECTION, &by_n((round as i64 * 37) % DISTINCT))
                    .await
                    .unwrap();
                assert_eq!(found.len(), expected);
            }
        })
        .await;
        let index = if indexed { "yes" } else { "no" };
        rows.push([
            label.into(),
            "list where n = K (limit 50)".into(),
            index.into(),
            rounds.to_string(),
            ms(p50),
            ms(p99),
        ]);
        let (p50, p99) = time(rounds, |_| {
            let store = store.clone();
            async move {
                let found = store
                    .query_documents(COLLECTION, &top_scores())
                    .await
                    .unwrap();
                assert_eq!(found.len(), 50.min(docs));
            }
        })
        .await;
        rows.push([
            label.into(),
            "list sort -score (limit 50)".into(),
            index.into(),
            rounds.to_string(),
            ms(p50),
            ms(p99),
        ]);
    }
    let (p50, p99) = time(2_000, |round| {
        let store = store.clone();
        async move {
            let id = format!("doc{:08}", (round * 7919) % docs);
            assert!(store.get_document(COLLECTION, &id).await.unwrap().is_some());
        }
    })
    .await;
    rows.push([
        label.into(),
        "get by id".into(),
        "primary key".into(),
        "2000".into(),
        ms(p50),
        ms(p99),
    ]);
}

#[tokio::main]
async fn main() {
    let (docs, measuring) = args();
    let mut rows = Vec::new();

    let dir = tempfile::tempdir().unwrap();
    let sqlite = Store::open(&format!("sqlite://{}/bench.db", dir.path().display()))
        .await
        .unwrap();
    run("SQLite", &sqlite, docs, &mut rows).await;
    sqlite.close().await;

    let url = gureum_store::testing::fresh_postgres_url().await;
    let postgres = Store::open(&url).await.unwrap();
    run("PostgreSQL", &postgres, docs, &mut rows).await;
    postgres.close().await;
    gureum_store::testing::drop_postgres(&url).await;

    println!();
    println!(
        "Documents: {docs} in one collection ({} distinct values of n), store API, {}",
        DISTINCT,
        if measuring { "release" } else { "smoke run" }
    );
    println!();
    println!("| store | query | index | runs | p50 ms | p99 ms |");
    println!("|---|---|---|---:|---:|---:|");
    for row in rows {
        println!("| {} |", row.join(" | "));
    }
}
