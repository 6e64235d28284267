//! The command line (DESIGN §8): parses the arguments and runs the subcommand (`cli/`).

mod cli;

use clap::Parser;

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    if let Err(e) = cli::run(cli::Cli::parse()) {
        eprintln!("mailtrail: {e:#}");
        std::process::exit(1);
    }
}
