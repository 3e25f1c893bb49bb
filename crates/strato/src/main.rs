//! The `strato` binary: `serve` runs the EC2-compatible endpoint; `admin`
//! manages accounts and keys.

mod admin;
mod config;
mod credentials;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "strato", version, about = "Strato: a self-hosted, EC2-compatible virtual server service")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the EC2 endpoint.
    Serve {
        /// Address and port to listen on [default: 127.0.0.1:8773].
        #[arg(long, env = "STRATO_LISTEN")]
        listen: Option<String>,
        /// Where Strato keeps its state [default: $XDG_DATA_HOME/strato or ~/.local/share/strato].
        #[arg(long, env = "STRATO_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// A TOML config file (see docs/configuration.md).
        #[arg(long, env = "STRATO_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Manage accounts and access keys.
    Admin {
        #[arg(long, env = "STRATO_DATA_DIR", global = true)]
        data_dir: Option<PathBuf>,
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an account with one access key (printed once, as JSON).
    CreateAccount {
        /// A 12-digit account id; a random one if omitted.
        #[arg(long)]
        account_id: Option<String>,
    },
    /// Add an access key to an account.
    CreateAccessKey {
        #[arg(long)]
        account_id: String,
    },
    /// List access key ids by account.
    ListAccessKeys,
    /// Delete an access key.
    DeleteAccessKey {
        #[arg(long)]
        access_key_id: String,
    },
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("STRATO_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_ansi(ansi).init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { listen, data_dir, config } => {
            init_logging();
            serve_main(listen, data_dir, config)
        }
        Command::Admin { data_dir, command } => {
            let dir = data_dir.unwrap_or_else(config::default_data_dir);
            match command {
                AdminCommand::CreateAccount { account_id } => admin::create_account(&dir, account_id),
                AdminCommand::CreateAccessKey { account_id } => admin::create_access_key(&dir, &account_id),
                AdminCommand::ListAccessKeys => admin::list_access_keys(&dir),
                AdminCommand::DeleteAccessKey { access_key_id } => admin::delete_access_key(&dir, &access_key_id),
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("strato: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve_main(listen: Option<String>, data_dir: Option<PathBuf>, config_path: Option<PathBuf>) -> Result<(), String> {
    let file = match &config_path {
        Some(p) => config::FileConfig::load(p)?,
        None => config::FileConfig::default(),
    };
    let listen = listen.or_else(|| file.listen.clone()).unwrap_or_else(|| config::DEFAULT_LISTEN.to_string());
    let listen = config::parse_listen(&listen)?;
    let data_dir = data_dir.or_else(|| file.data_dir.clone()).unwrap_or_else(config::default_data_dir);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the async runtime: {e}"))?;
    rt.block_on(serve::run(serve::ServeArgs { listen, data_dir, file }))
}
