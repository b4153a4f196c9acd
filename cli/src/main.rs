//! `pith`, the command: parses the arguments and hands them to the library.

use std::process::ExitCode;

use clap::Parser as _;
use pith_cli::args::{Cli, Command};
use pith_cli::run::{run, PITH_FAILED};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => match run(&args) {
            Ok(status) => ExitCode::from(status),
            Err(error) => {
                eprintln!("pith: error: {error:#}");
                ExitCode::from(PITH_FAILED)
            }
        },
        Command::Build(args) => match pith_cli::build::build(&args) {
            Ok(status) => ExitCode::from(status),
            Err(error) => {
                eprintln!("pith: error: {error:#}");
                ExitCode::from(PITH_FAILED)
            }
        },
        Command::Deps(args) => {
            match pith_cli::deps::resolve(&args.program, &pith_cli::deps::SearchConfig::default()) {
                Ok(dependencies) => {
                    for line in pith_cli::deps::describe(&dependencies) {
                        println!("{line}");
                    }
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("pith: error: {error}");
                    ExitCode::from(PITH_FAILED)
                }
            }
        }
        Command::Pkg(command) => match pith_cli::package::run(&command) {
            Ok(status) => ExitCode::from(status),
            Err(error) => {
                eprintln!("pith: error: {error:#}");
                ExitCode::from(PITH_FAILED)
            }
        },
        Command::Image(command) => match pith_cli::inspect::run(&command) {
            Ok(status) => ExitCode::from(status),
            Err(error) => {
                eprintln!("pith: error: {error:#}");
                ExitCode::from(PITH_FAILED)
            }
        },
    }
}
