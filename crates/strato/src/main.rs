//! The `strato` binary: `serve` runs the EC2-compatible endpoint; `admin`
//! manages accounts and keys.

mod admin;
mod config;
mod credentials;
mod doctor;
mod metadata;
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
        /// Where built images live [default: <data-dir>/images].
        #[arg(long, env = "STRATO_IMAGES_DIR")]
        images_dir: Option<PathBuf>,
    },
    /// Build and list the built-in images.
    Image {
        #[arg(long, env = "STRATO_DATA_DIR", global = true)]
        data_dir: Option<PathBuf>,
        #[arg(long, env = "STRATO_IMAGES_DIR", global = true)]
        images_dir: Option<PathBuf>,
        #[command(subcommand)]
        command: ImageCommand,
    },
    /// Check this host: QEMU, the accelerator and why, tools that are missing.
    Doctor {
        /// `auto`, `kvm` or `tcg`, as in the config.
        #[arg(long, default_value = "auto")]
        accel: String,
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
enum ImageCommand {
    /// Build a built-in image (minimal, debian-12) from Debian packages.
    Build { name: String },
    /// List the images built on this host.
    List,
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
    if !matches!(cli.command, Command::Serve { .. }) {
        strato_net::sys::default_sigpipe();
    }
    let result = match cli.command {
        Command::Serve { listen, data_dir, config, images_dir } => {
            init_logging();
            serve_main(listen, data_dir, config, images_dir)
        }
        Command::Image { data_dir, images_dir, command } => {
            let dir = images_dir.unwrap_or_else(|| data_dir.unwrap_or_else(config::default_data_dir).join("images"));
            let store = strato_images::ImageStore::new(dir);
            match command {
                ImageCommand::Build { name } => store
                    .build(&name, &mut |msg: &str| eprintln!("{msg}"))
                    .map(|a| println!("{}", a.dir.display()))
                    .map_err(|e| e.to_string()),
                ImageCommand::List => {
                    for key in ["minimal", "debian-12"] {
                        match store.get(key) {
                            Some(a) => println!("{key}	built {}	{}", a.manifest.built_at, a.dir.display()),
                            None => println!("{key}	not built"),
                        }
                    }
                    Ok(())
                }
            }
        }
        Command::Doctor { accel } => {
            if doctor::run(&accel) {
                Ok(())
            } else {
                Err("the host is not ready (see above)".into())
            }
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

fn serve_main(listen: Option<String>, data_dir: Option<PathBuf>, config_path: Option<PathBuf>, images_dir: Option<PathBuf>) -> Result<(), String> {
    let file = match &config_path {
        Some(p) => config::FileConfig::load(p)?,
        None => config::FileConfig::default(),
    };
    let listen = listen.or_else(|| file.listen.clone()).unwrap_or_else(|| config::DEFAULT_LISTEN.to_string());
    let listen = config::parse_listen(&listen)?;
    let data_dir = data_dir.or_else(|| file.data_dir.clone()).unwrap_or_else(config::default_data_dir);
    let images_dir = images_dir.or_else(|| file.images_dir.clone()).unwrap_or_else(|| data_dir.join("images"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the async runtime: {e}"))?;
    rt.block_on(serve::run(serve::ServeArgs { listen, data_dir, images_dir, file }))
}
