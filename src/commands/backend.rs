//! `gureum users` (list, show, disable, enable the backend services' users) and
//! `gureum collections` (rules, indexes and file limits of document collections).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::Value;

/// Arguments of `gureum users`.
#[derive(Debug, clap::Args)]
pub struct UsersArgs {
    #[command(subcommand)]
    command: Option<UsersCommand>,
}

#[derive(Debug, clap::Subcommand)]
enum UsersCommand {
    /// List users by email (the default).
    Ls {
        /// Only users whose email sorts after this.
        #[arg(long)]
        after: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Show one user (by id or email).
    Show {
        /// Id or email.
        user: String,
    },
    /// Disable a user: no sign-in or token refresh; their refresh tokens are revoked.
    Disable {
        /// Id or email.
        user: String,
    },
    /// Enable a disabled user.
    Enable {
        /// Id or email.
        user: String,
    },
}

/// Arguments of `gureum collections`.
#[derive(Debug, clap::Args)]
pub struct CollectionsArgs {
    #[command(subcommand)]
    command: Option<CollectionsCommand>,
}

#[derive(Debug, clap::Subcommand)]
enum CollectionsCommand {
    /// List configured collections with their document counts (the default).
    Ls,
    /// Show a collection's rules, indexes and file limits.
    Show {
        /// The collection.
        name: String,
    },
    /// Set a collection's config from a TOML or JSON file:
    /// `indexes = ["done"]`, `[rules]` list/get/create/update/delete = "<CEL>",
    /// `[files]` max_bytes, types. Every problem is reported; nothing changes unless all is valid.
    Set {
        /// The collection.
        name: String,
        /// The config file (.toml or .json).
        file: PathBuf,
    },
    /// Remove a collection with its documents and files.
    Rm {
        /// The collection.
        name: String,
    },
}

fn when(ms: &Value) -> String {
    ms.as_i64()
        .and_then(|ms| {
            std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_millis(ms as u64))
        })
        .map(|t| humantime::format_rfc3339_seconds(t).to_string())
        .unwrap_or_else(|| "-".into())
}

pub async fn users(
    client: &gureum_client::Client,
    args: UsersArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let answer = match args.command.unwrap_or(UsersCommand::Ls {
        after: None,
        limit: 100,
    }) {
        UsersCommand::Ls { after, limit } => {
            let page = client.users(after.as_deref(), limit).await?;
            if json {
                println!("{page}");
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "{:<34} {:<36} {:<9} {:<20} LAST SIGN-IN",
                "ID", "EMAIL", "DISABLED", "CREATED"
            );
            for user in page["users"].as_array().into_iter().flatten() {
                println!(
                    "{:<34} {:<36} {:<9} {:<20} {}",
                    user["id"].as_str().unwrap_or(""),
                    user["email"].as_str().unwrap_or(""),
                    if user["disabled"].as_bool() == Some(true) {
                        "yes"
                    } else {
                        "no"
                    },
                    when(&user["created"]),
                    when(&user["last_sign_in"]),
                );
            }
            if let Some(next) = page["next"].as_str() {
                println!("more: gureum users ls --after {next}");
            }
            return Ok(ExitCode::SUCCESS);
        }
        UsersCommand::Show { user } => client.user(&user).await?,
        UsersCommand::Disable { user } => client.set_user_disabled(&user, true).await?,
        UsersCommand::Enable { user } => client.set_user_disabled(&user, false).await?,
    };
    if json {
        println!("{answer}");
    } else {
        println!(
            "{} {}{}",
            answer["id"].as_str().unwrap_or(""),
            answer["email"].as_str().unwrap_or(""),
            if answer["disabled"].as_bool() == Some(true) {
                " (disabled)"
            } else {
                ""
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads a collection config file: TOML (by extension, or when it is not JSON) or JSON.
fn read_config(file: &PathBuf) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let is_json = file.extension().is_some_and(|e| e == "json");
    if is_json {
        return serde_json::from_str(&text)
            .with_context(|| format!("{} is not valid JSON", file.display()));
    }
    let value: toml::Value =
        toml::from_str(&text).with_context(|| format!("{} is not valid TOML", file.display()))?;
    Ok(serde_json::to_value(value)?)
}

pub async fn collections(
    client: &gureum_client::Client,
    args: CollectionsArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    match args.command.unwrap_or(CollectionsCommand::Ls) {
        CollectionsCommand::Ls => {
            let list = client.collections().await?;
            if json {
                println!("{list}");
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "{:<24} {:>10}  {:<24} RULES",
                "NAME", "DOCUMENTS", "INDEXES"
            );
            for entry in list.as_array().into_iter().flatten() {
                let config = &entry["config"];
                let indexes: Vec<&str> = config["indexes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                let rules: Vec<&str> = config["rules"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, _)| k.as_str())
                    .collect();
                println!(
                    "{:<24} {:>10}  {:<24} {}",
                    entry["name"].as_str().unwrap_or(""),
                    entry["documents"],
                    if indexes.is_empty() {
                        "-".into()
                    } else {
                        indexes.join(",")
                    },
                    if rules.is_empty() {
                        "- (denies users)".into()
                    } else {
                        rules.join(",")
                    },
                );
            }
        }
        CollectionsCommand::Show { name } => {
            let answer = client.collection(&name).await?;
            if json {
                println!("{answer}");
            } else {
                println!("collection {name}: {} documents", answer["documents"]);
                println!("{}", serde_json::to_string_pretty(&answer["config"])?);
            }
        }
        CollectionsCommand::Set { name, file } => {
            let config = read_config(&file)?;
            let answer = client.set_collection(&name, &config).await?;
            if json {
                println!("{answer}");
            } else {
                println!("collection {name}: config set from {}", file.display());
            }
        }
        CollectionsCommand::Rm { name } => {
            if !client.delete_collection(&name).await? {
                anyhow::bail!("no collection {name:?}");
            }
            if json {
                println!("{{\"deleted\":true}}");
            } else {
                println!("collection {name} removed with its documents and files");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
