//! `gureum invoke`: call a function through the control API and print its body.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, bail};

/// Arguments of `gureum invoke`.
#[derive(Debug, clap::Args)]
pub struct InvokeArgs {
    /// Function name (`NAME@VERSION` pins a version).
    name: String,
    /// Request body, or `@FILE` to read it from a file.
    #[arg(short = 'd', long = "data")]
    data: Option<String>,
    /// HTTP method; default POST with a body, GET without.
    #[arg(short = 'X', long = "request")]
    method: Option<String>,
    /// Path (and query) the function sees.
    #[arg(long, default_value = "/")]
    path: String,
    /// Extra request header, `NAME: VALUE` (repeatable).
    #[arg(short = 'H', long = "header")]
    headers: Vec<String>,
    /// Print the response status and headers to stderr.
    #[arg(short = 'i', long)]
    include: bool,
    /// Queue the invocation (stored durably, run with retries) and print its
    /// invocation id instead of waiting for the response.
    #[arg(long = "async")]
    asynchronous: bool,
    /// With --async: a key that makes a repeat of this call within 24 h a no-op (the
    /// first invocation's id is printed).
    #[arg(long, requires = "asynchronous")]
    idempotency_key: Option<String>,
}

pub async fn run(
    client: &gureum_client::Client,
    args: InvokeArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let body = match &args.data {
        Some(data) => match data.strip_prefix('@') {
            Some(file) => std::fs::read(file).with_context(|| format!("reading {file}"))?,
            None => data.clone().into_bytes(),
        },
        None => Vec::new(),
    };
    let method = match &args.method {
        Some(method) => reqwest::Method::from_bytes(method.to_uppercase().as_bytes())
            .with_context(|| format!("{method:?} is not an HTTP method"))?,
        None if args.data.is_some() => reqwest::Method::POST,
        None => reqwest::Method::GET,
    };
    if !args.path.starts_with('/') {
        bail!("--path must start with '/', e.g. --path /items?limit=1");
    }
    let mut headers = Vec::new();
    for header in &args.headers {
        let Some((key, value)) = header.split_once(':') else {
            bail!("header {header:?} is not `NAME: VALUE`");
        };
        headers.push((key.trim().to_string(), value.trim().to_string()));
    }
    if args.asynchronous {
        headers.push(("x-gureum-invocation-type".to_string(), "event".to_string()));
        if let Some(key) = &args.idempotency_key {
            headers.push(("idempotency-key".to_string(), key.clone()));
        }
    }
    let response = client
        .invoke(&args.name, method, &args.path, &headers, body)
        .await?;
    let status = response.status();
    let platform_error = response.headers().contains_key("x-gureum-error");
    if args.include {
        eprintln!("HTTP {status}");
        for (key, value) in response.headers() {
            eprintln!("{key}: {}", value.to_str().unwrap_or("<binary>"));
        }
    }
    let bytes = response.bytes().await?;
    if platform_error {
        // The platform's JSON error: show its message rather than raw JSON.
        let message = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|value| value["error"]["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
        eprintln!("error: HTTP {status}: {message}");
        return Ok(ExitCode::FAILURE);
    }
    if args.asynchronous && !json {
        let queued: gureum_api_types::QueuedInvocation = serde_json::from_slice(&bytes)
            .with_context(|| {
                format!(
                    "unexpected answer to an asynchronous invoke: {}",
                    String::from_utf8_lossy(&bytes)
                )
            })?;
        if queued.duplicate {
            eprintln!("already queued with this idempotency key:");
        }
        println!("{}", queued.invocation_id);
        return Ok(ExitCode::SUCCESS);
    }
    std::io::stdout().write_all(&bytes)?;
    Ok(ExitCode::SUCCESS)
}
