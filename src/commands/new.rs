//! `gureum new`: a ready project from a template embedded in the binary (no network), plus
//! the manifest's JSON Schema for editors.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};

use super::output::Output;

/// The schema file `gureum new` writes beside gureum.toml (the templates' first line
/// `#:schema ./gureum.schema.json` points editors at it).
pub const SCHEMA_FILE: &str = "gureum.schema.json";

/// Arguments of `gureum new`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  gureum new --list
  gureum new rust-wasm hi            # ./hi: a Rust wasi:http component on the gureum SDK
  gureum new python-lambda api --dir services/api
  cd hi && gureum dev                # build, deploy, watch, redeploy on save")]
pub struct NewArgs {
    /// Template: rust-wasm, rust-lambda, python-lambda, python-wasm, js-wasm (see --list).
    #[arg(required_unless_present = "list")]
    template: Option<String>,
    /// The function's name (a-z, 0-9, '-'); also the directory unless --dir is given.
    #[arg(required_unless_present = "list")]
    name: Option<String>,
    /// List the templates and what each needs.
    #[arg(long)]
    list: bool,
    /// Where to create the project (default: ./NAME); must not exist or be empty.
    #[arg(long)]
    dir: Option<PathBuf>,
}

pub fn run(args: NewArgs, output: Output) -> anyhow::Result<ExitCode> {
    if args.list {
        return list(output);
    }
    let (Some(template), Some(name)) = (args.template, args.name) else {
        bail!(
            "gureum new needs a template and a name, e.g. `gureum new rust-wasm hi` (see --list)"
        );
    };
    let template = gureum_templates::find(&template)?;
    let dir = args.dir.unwrap_or_else(|| PathBuf::from(&name));
    let mut files = gureum_templates::create(template, &name, &dir)?;
    let schema = serde_json::to_string_pretty(&gureum_manifest::json_schema())?;
    std::fs::write(dir.join(SCHEMA_FILE), schema + "\n")
        .with_context(|| format!("writing {}", dir.join(SCHEMA_FILE).display()))?;
    files.push(PathBuf::from(SCHEMA_FILE));
    files.sort();
    if output.json {
        let value = serde_json::json!({
            "template": template.id,
            "name": name,
            "dir": dir,
            "files": files,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    output.success(&format!(
        "created {} from template {} in {}",
        output.bold(&name),
        template.id,
        dir.display()
    ));
    if !output.quiet {
        for file in files
            .iter()
            .filter(|file| !file.starts_with(gureum_templates::SDK_VENDOR_DIR))
        {
            println!("  {}", file.display());
        }
        if template.vendors_sdk {
            println!("  {}/ (the gureum SDK)", gureum_templates::SDK_VENDOR_DIR);
        }
        println!();
        println!("Needs: {}", template.toolchain);
        println!("Next:");
        println!("  cd {}", dir.display());
        println!("  gureum dev        # build, deploy, watch and redeploy on save");
        println!("  open README.md    # what every file does");
    }
    Ok(ExitCode::SUCCESS)
}

fn list(output: Output) -> anyhow::Result<ExitCode> {
    if output.json {
        let templates: Vec<_> = gureum_templates::ALL
            .iter()
            .map(|t| {
                serde_json::json!({
                    "template": t.id,
                    "description": t.description,
                    "needs": t.toolchain,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&templates)?);
        return Ok(ExitCode::SUCCESS);
    }
    for template in gureum_templates::ALL {
        println!("{:<14} {}", template.id, template.description);
        println!("{:<14} needs {}", "", template.toolchain);
    }
    Ok(ExitCode::SUCCESS)
}
