//! Packages: recipes for running servers from Debian (`packages/<name>/`) as Pith VMs.
//!
//! A recipe is a directory with two files: `pith.toml`, a manifest as `pith run --manifest`
//! reads it (the program's host path, its arguments, the config files shipped in the
//! recipe), and `package.toml`, what the manifest does not say: the Debian package that
//! provides the program, the ports to forward and the memory to give. `pith pkg run NAME
//! [OPTIONS] [-- ARGS]` is `pith run --manifest packages/NAME/pith.toml` with those
//! defaults; `pith pkg build NAME -o IMAGE` is the same for `pith build`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use clap::parser::ValueSource;
use clap::{Args, CommandFactory as _, FromArgMatches as _, Subcommand};
use serde::Deserialize;

use crate::args::{Cli, RunArgs};
use crate::build::BuildArgs;

/// `pith pkg`'s subcommands.
#[derive(Debug, Subcommand)]
pub enum PkgCommand {
    /// List the recipes: each package's name, the Debian package it needs (and whether it is
    /// installed), its ports and what it is.
    List(PkgListArgs),
    /// Run a package's program: `pith run` with the recipe's manifest, memory and ports.
    /// Options are `pith run`'s (-p replaces the recipe's ports, -m its memory); the words
    /// after them replace the recipe's arguments.
    Run(PkgRunArgs),
    /// Write a bootable image of a package: `pith build` with the recipe's manifest. Options
    /// are `pith build`'s; boot it with `pith run --image IMAGE -p PORT`.
    Build(PkgRunArgs),
}

/// The options of `pith pkg list`.
#[derive(Debug, Args)]
pub struct PkgListArgs {
    /// Where the recipes are. Default: $PITH_PACKAGES, else the `packages/` directory of
    /// the source tree this `pith` was built in.
    #[arg(long, value_name = "DIR")]
    pub packages: Option<PathBuf>,
}

/// The options of `pith pkg run` and `pith pkg build`.
#[derive(Debug, Args)]
pub struct PkgRunArgs {
    /// Where the recipes are (as for `pith pkg list`).
    #[arg(long, value_name = "DIR")]
    pub packages: Option<PathBuf>,
    /// The package's name (`pith pkg list` lists them).
    pub name: String,
    /// `pith run`'s (or `pith build`'s) options, then the program's arguments.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "OPTIONS"
    )]
    pub rest: Vec<OsString>,
}

/// `package.toml`: what a recipe says beyond its manifest.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageInfo {
    /// One line on what it is.
    pub description: String,
    /// The Debian package that provides the program (`apt-get install` installs it).
    pub debian: String,
    /// The ports forwarded from the host when `pith pkg run` is given no -p (user-mode
    /// networking), as `-p` takes them.
    #[serde(default)]
    pub ports: Vec<String>,
    /// The VM's memory unless -m says, e.g. "128M".
    #[serde(default)]
    pub memory: Option<String>,
}

/// A recipe found on disk.
#[derive(Debug, Clone)]
pub struct Recipe {
    pub name: String,
    pub directory: PathBuf,
    pub info: PackageInfo,
    /// The program's host path, from the manifest.
    pub program: PathBuf,
}

impl Recipe {
    fn manifest_path(&self) -> PathBuf {
        self.directory.join("pith.toml")
    }

    /// Whether the program is on this machine.
    pub fn installed(&self) -> bool {
        self.program.is_file()
    }

    /// The error for a program that is not installed, with the command that installs it.
    fn not_installed(&self) -> anyhow::Error {
        anyhow::anyhow!(
            "package {}: {} is not installed; it comes from Debian's {} package: sudo apt-get install {}",
            self.name,
            self.program.display(),
            self.info.debian,
            self.info.debian
        )
    }
}

/// Where the recipes are: `explicit` (--packages), else $PITH_PACKAGES, else the source
/// tree's `packages/` beside the `pith` executable (target/<profile>/pith).
pub fn packages_directory(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    if let Some(path) = std::env::var_os("PITH_PACKAGES").filter(|value| !value.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().context("finding the pith executable")?;
    let beside = exe
        .parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .map(|root| root.join("packages"));
    match beside {
        Some(directory) if directory.is_dir() => Ok(directory),
        _ => bail!(
            "no packages directory found (looked beside {}): pass --packages DIR or set PITH_PACKAGES",
            exe.display()
        ),
    }
}

/// Reads the recipe in `directory` (named after it).
pub fn read_recipe(directory: &Path) -> anyhow::Result<Recipe> {
    let name = directory
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let info_path = directory.join("package.toml");
    let text = std::fs::read_to_string(&info_path)
        .with_context(|| format!("reading {}", info_path.display()))?;
    let info: PackageInfo = toml::from_str(&text)
        .map_err(|error| anyhow::anyhow!("{}: {error}", info_path.display()))?;
    let manifest_path = directory.join("pith.toml");
    let manifest = crate::manifest::read_manifest(&manifest_path)?;
    let Some(program) = manifest.program else {
        bail!(
            "{}: a recipe's manifest must name its program",
            manifest_path.display()
        );
    };
    for port in &info.ports {
        crate::network::parse_port_forward(port).map_err(|error| {
            anyhow::anyhow!("{}: ports: {port:?}: {error}", info_path.display())
        })?;
    }
    if let Some(memory) = &info.memory {
        crate::args::parse_memory_size(memory).map_err(|error| {
            anyhow::anyhow!("{}: memory: {memory:?}: {error}", info_path.display())
        })?;
    }
    Ok(Recipe {
        name,
        directory: directory.to_path_buf(),
        info,
        program,
    })
}

/// Every recipe under `packages`, by name.
pub fn list_recipes(packages: &Path) -> anyhow::Result<Vec<Recipe>> {
    let mut recipes = Vec::new();
    let entries = std::fs::read_dir(packages)
        .with_context(|| format!("reading the packages directory {}", packages.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.join("package.toml").is_file() {
            recipes.push(read_recipe(&path)?);
        }
    }
    recipes.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(recipes)
}

/// The recipe called `name`, or an error listing those there are.
pub fn find_recipe(packages: &Path, name: &str) -> anyhow::Result<Recipe> {
    let directory = packages.join(name);
    if name.contains('/') || !directory.join("package.toml").is_file() {
        let known: Vec<String> = list_recipes(packages)
            .map(|recipes| recipes.into_iter().map(|recipe| recipe.name).collect())
            .unwrap_or_default();
        bail!(
            "no package {name:?} in {} (there are: {})",
            packages.display(),
            known.join(", ")
        );
    }
    read_recipe(&directory)
}

/// `pith pkg list`'s lines: name, Debian package and whether it is installed, ports, what.
pub fn describe(recipes: &[Recipe]) -> Vec<String> {
    let mut lines = vec![format!(
        "{:<12} {:<28} {:<12} {}",
        "NAME", "DEBIAN PACKAGE", "PORTS", "DESCRIPTION"
    )];
    for recipe in recipes {
        let debian = if recipe.installed() {
            recipe.info.debian.clone()
        } else {
            format!("{} (not installed)", recipe.info.debian)
        };
        lines.push(format!(
            "{:<12} {:<28} {:<12} {}",
            recipe.name,
            debian,
            recipe.info.ports.join(","),
            recipe.info.description
        ));
    }
    lines
}

/// Parses `pith <subcommand> --manifest MANIFEST REST...` as clap would, for the value
/// sources (which options the user gave).
fn parse_as(
    subcommand: &str,
    manifest: &Path,
    rest: &[OsString],
) -> anyhow::Result<clap::ArgMatches> {
    let mut words: Vec<OsString> = vec![
        OsString::from("pith"),
        OsString::from(subcommand),
        OsString::from("--manifest"),
        manifest.as_os_str().to_owned(),
    ];
    words.extend(rest.iter().cloned());
    Cli::command()
        .try_get_matches_from(words)
        .map_err(|error| anyhow::anyhow!("{}", error.render()))
}

/// `pith pkg run`'s `pith run` arguments: the recipe's manifest, and its memory and ports
/// where the user gave none.
pub fn run_args(recipe: &Recipe, rest: &[OsString]) -> anyhow::Result<RunArgs> {
    let matches = parse_as("run", &recipe.manifest_path(), rest)?;
    let Some(("run", matches)) = matches.subcommand() else {
        bail!("pith pkg run: the options did not parse as pith run's");
    };
    let mut args =
        RunArgs::from_arg_matches(matches).map_err(|error| anyhow::anyhow!("{error}"))?;
    if matches.value_source("memory") != Some(ValueSource::CommandLine) {
        if let Some(memory) = &recipe.info.memory {
            args.memory =
                crate::args::parse_memory_size(memory).map_err(|error| anyhow::anyhow!(error))?;
        }
    }
    let user_networking = matches!(args.net, crate::network::NetMode::User);
    if args.publish.is_empty() && user_networking {
        for port in &recipe.info.ports {
            args.publish.push(
                crate::network::parse_port_forward(port).map_err(|error| anyhow::anyhow!(error))?,
            );
        }
    }
    Ok(args)
}

/// `pith pkg build`'s `pith build` arguments: the recipe's manifest and the user's options.
pub fn build_args(recipe: &Recipe, rest: &[OsString]) -> anyhow::Result<BuildArgs> {
    let matches = parse_as("build", &recipe.manifest_path(), rest)?;
    let Some(("build", matches)) = matches.subcommand() else {
        bail!("pith pkg build: the options did not parse as pith build's");
    };
    BuildArgs::from_arg_matches(matches).map_err(|error| anyhow::anyhow!("{error}"))
}

/// The recipe `pith pkg run` or `pith pkg build` names, if its program is installed.
fn installed_recipe(args: &PkgRunArgs) -> anyhow::Result<Recipe> {
    let packages = packages_directory(args.packages.as_deref())?;
    let recipe = find_recipe(&packages, &args.name)?;
    if !recipe.installed() {
        return Err(recipe.not_installed());
    }
    Ok(recipe)
}

/// Runs `pith pkg`: the exit status for the process.
pub fn run(command: &PkgCommand) -> anyhow::Result<u8> {
    match command {
        PkgCommand::List(args) => {
            let packages = packages_directory(args.packages.as_deref())?;
            for line in describe(&list_recipes(&packages)?) {
                println!("{line}");
            }
            Ok(0)
        }
        PkgCommand::Run(args) => {
            let recipe = installed_recipe(args)?;
            crate::run::run(&run_args(&recipe, &args.rest)?)
        }
        PkgCommand::Build(args) => {
            let recipe = installed_recipe(args)?;
            crate::build::build(&build_args(&recipe, &args.rest)?)
        }
    }
}
