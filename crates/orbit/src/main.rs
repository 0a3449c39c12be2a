//! `orbit`: the PBX binary. Parses the command line and configuration,
//! then wires the layers together (see `server.rs`).

mod bootstrap;
mod config;
mod dispatch;
mod server;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "orbit",
    version,
    about = "Orbit PBX: SIP registrar and call server with enhanced call park"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the PBX: SIP listeners, the HTTP API and the store.
    Serve(config::ServeArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let config = match config::Config::load(&args) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("orbit: {e:#}");
                    return std::process::ExitCode::from(2);
                }
            };
            server::init_logging(&config);
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("orbit: cannot start the runtime: {e}");
                    return std::process::ExitCode::FAILURE;
                }
            };
            match runtime.block_on(server::run(config)) {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    eprintln!("orbit: {e:#}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
    }
}
