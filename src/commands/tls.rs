//! `gureum tls ca`: the local CA of `gureum up --tls self-signed`, for a browser, curl or
//! the system's trust store.

use std::path::PathBuf;
use std::process::ExitCode;

use super::Output;

/// Arguments of `gureum tls`.
#[derive(Debug, clap::Args)]
pub struct TlsArgs {
    #[command(subcommand)]
    command: TlsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum TlsCommand {
    /// Print the local CA certificate (PEM) that signs the self-signed certificates.
    #[command(after_help = "Examples:
  gureum tls ca > gureum-ca.pem && curl --cacert gureum-ca.pem https://localhost:8080/fn/hello
  gureum tls ca --data-dir /var/lib/gureum | sudo tee /usr/local/share/ca-certificates/gureum.crt")]
    Ca {
        /// The data directory of that `gureum up`.
        #[arg(long, env = "GUREUM_DATA_DIR", default_value = super::up::DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
    },
}

/// Runs `gureum tls …`.
pub fn run(args: TlsArgs, output: Output) -> anyhow::Result<ExitCode> {
    match args.command {
        TlsCommand::Ca { data_dir } => {
            let path = gureum_tls::ca_path(&data_dir);
            let pem = std::fs::read(&path).map_err(|error| {
                anyhow::anyhow!(
                    "no local CA at {} ({error}); `gureum up --tls self-signed --data-dir {}` makes it on its first start",
                    path.display(),
                    data_dir.display()
                )
            })?;
            output.info(&format!(
                "the local CA from {}; trust it with e.g. `curl --cacert FILE`, \
                 `cp FILE /usr/local/share/ca-certificates/gureum.crt && update-ca-certificates`, \
                 or your browser's certificate settings (Authorities → Import)",
                path.display()
            ));
            super::print_all(&pem)
        }
    }
}
