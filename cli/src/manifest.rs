//! The manifest, `pith.toml`: what `pith run --manifest` and `pith build --manifest` put in the
//! VM (files, directories, globs), the program with its arguments, environment and working
//! directory, and the image's size and whether `/` is writable. docs/manifest.md describes it.
//!
//! Paths on the host are relative to the manifest's own directory, so a project's `pith.toml`
//! works from wherever `pith` is started.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::args::{parse_memory_size, EnvVar, MemorySize, PathMapping};

/// `pith.toml`, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestFile {
    /// The program: a host path.
    program: Option<String>,
    /// argv[1..].
    #[serde(default)]
    args: Vec<String>,
    /// The program's environment.
    #[serde(default)]
    env: BTreeMap<String, String>,
    /// The working directory inside the VM.
    workdir: Option<String>,
    /// Files: `host` (a path or a glob) to `guest`.
    #[serde(default)]
    file: Vec<Entry>,
    /// Directory trees: `host` to `guest`.
    #[serde(default)]
    dir: Vec<Entry>,
    #[serde(default)]
    image: ImageSection,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    host: String,
    guest: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImageSection {
    /// The size of the image `pith build` writes, e.g. "512M".
    size: Option<String>,
    /// Whether the program may write to `/` (default true).
    writable: Option<bool>,
    /// What /tmp is: a tmpfs size ("64M") or "disk".
    tmp: Option<String>,
}

/// A manifest read, checked and resolved: host paths made absolute, globs expanded.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Manifest {
    pub program: Option<PathBuf>,
    /// The manifest named the program by an absolute path (`/usr/bin/redis-server`): it goes
    /// at that path inside, as on the command line; a relative one goes at `/NAME`.
    pub program_absolute: bool,
    pub args: Vec<String>,
    pub env: Vec<EnvVar>,
    pub workdir: Option<String>,
    pub files: Vec<PathMapping>,
    pub dirs: Vec<PathMapping>,
    pub size: Option<MemorySize>,
    pub writable: bool,
    pub tmp: Option<crate::args::TmpSetting>,
}

/// Reads `path` and resolves it.
pub fn read_manifest(path: &Path) -> anyhow::Result<Manifest> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| anyhow::anyhow!("--manifest {}: {error}", path.display()))?;
    let base = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    parse_manifest(&text, base).map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))
}

/// Parses a manifest's text; host paths are taken relative to `base`.
pub fn parse_manifest(text: &str, base: &Path) -> Result<Manifest, String> {
    // toml's message names the line and column and shows the line.
    let file: ManifestFile = toml::from_str(text).map_err(|error| error.to_string())?;
    let absolute_guest = |what: &str, path: &str| -> Result<String, String> {
        if path.starts_with('/') {
            Ok(path.to_owned())
        } else {
            Err(format!(
                "{what} = \"{path}\": the path inside the VM must be absolute (start with /)"
            ))
        }
    };
    let workdir = match &file.workdir {
        Some(dir) => Some(absolute_guest("workdir", dir)?),
        None => None,
    };
    let mut env = Vec::new();
    for (key, value) in &file.env {
        if key.is_empty() || key.contains('=') {
            return Err(format!(
                "env: `{key}` is not a variable name (no '=', not empty)"
            ));
        }
        env.push(EnvVar {
            key: key.clone(),
            value: value.clone(),
        });
    }
    let mut files = Vec::new();
    for (index, entry) in file.file.iter().enumerate() {
        let what = format!("file[{index}]");
        let guest = absolute_guest(&format!("{what}.guest"), &entry.guest)?;
        files.extend(expand_files(&what, base, &entry.host, &guest)?);
    }
    let mut dirs = Vec::new();
    for (index, entry) in file.dir.iter().enumerate() {
        let guest = absolute_guest(&format!("dir[{index}].guest"), &entry.guest)?;
        dirs.push(PathMapping {
            host: base.join(&entry.host),
            guest,
        });
    }
    let size = match &file.image.size {
        Some(size) => {
            Some(parse_memory_size(size).map_err(|error| format!("image.size: {error}"))?)
        }
        None => None,
    };
    Ok(Manifest {
        program: file.program.as_ref().map(|program| base.join(program)),
        program_absolute: file
            .program
            .as_ref()
            .is_some_and(|program| Path::new(program).is_absolute()),
        args: file.args,
        env,
        workdir,
        files,
        dirs,
        size,
        writable: file.image.writable.unwrap_or(true),
        tmp: match &file.image.tmp {
            Some(text) => {
                Some(crate::args::parse_tmp(text).map_err(|error| format!("image.tmp: {error}"))?)
            }
            None => None,
        },
    })
}

/// One `[[file]]`: a path, or a glob whose every match is a file. A guest path ending in `/`
/// is a directory the matches go into under their own names; a glob needs one.
fn expand_files(
    what: &str,
    base: &Path,
    host: &str,
    guest: &str,
) -> Result<Vec<PathMapping>, String> {
    let is_glob = host.contains(['*', '?', '[']);
    let into_directory = guest.ends_with('/');
    let place = |path: &Path| -> String {
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        if into_directory {
            format!("{guest}{name}")
        } else {
            guest.to_owned()
        }
    };
    if !is_glob {
        let path = base.join(host);
        return Ok(vec![PathMapping {
            guest: place(&path),
            host: path,
        }]);
    }
    if !into_directory {
        return Err(format!(
            "{what}: host = \"{host}\" is a glob, so guest = \"{guest}\" must be a directory ending in /"
        ));
    }
    let pattern = base.join(host);
    let matches = glob::glob(&pattern.to_string_lossy())
        .map_err(|error| format!("{what}: host = \"{host}\": {error}"))?;
    let mut mappings = Vec::new();
    for found in matches {
        let path = found.map_err(|error| format!("{what}: host = \"{host}\": {error}"))?;
        // Directories a glob happens to match are left to [[dir]].
        if path.is_dir() {
            continue;
        }
        mappings.push(PathMapping {
            guest: place(&path),
            host: path,
        });
    }
    if mappings.is_empty() {
        return Err(format!(
            "{what}: host = \"{host}\" matches no file in {}",
            base.display()
        ));
    }
    Ok(mappings)
}

/// The environment with `overrides` (the command line's `-e`) replacing what the manifest set.
pub fn merged_env(manifest: &[EnvVar], overrides: &[EnvVar]) -> Vec<EnvVar> {
    let mut env: Vec<EnvVar> = manifest
        .iter()
        .filter(|var| !overrides.iter().any(|over| over.key == var.key))
        .cloned()
        .collect();
    env.extend_from_slice(overrides);
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_project() -> tempfile::TempDir {
        let directory = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(directory.path().join("conf")).expect("mkdir");
        for name in ["a.conf", "b.conf", "notes.txt"] {
            std::fs::write(directory.path().join("conf").join(name), name).expect("write");
        }
        directory
    }

    #[test]
    fn a_whole_manifest_resolves() {
        let project = temp_project();
        let text = r#"
            program = "bin/server"
            args = ["--port", "8080"]
            workdir = "/srv"
            env = { LANG = "C.UTF-8", MODE = "prod" }

            [[file]]
            host = "conf/*.conf"
            guest = "/etc/server/"

            [[file]]
            host = "conf/notes.txt"
            guest = "/srv/README"

            [[dir]]
            host = "conf"
            guest = "/srv/conf"

            [image]
            size = "64M"
            writable = false
            tmp = "disk"
        "#;
        let manifest = parse_manifest(text, project.path()).expect("parses");
        assert_eq!(manifest.program, Some(project.path().join("bin/server")));
        assert!(
            !manifest.program_absolute,
            "a path relative to the manifest"
        );
        let absolute = parse_manifest("program = \"/usr/bin/server\"", project.path());
        assert!(absolute.expect("parses").program_absolute);
        assert_eq!(manifest.args, ["--port", "8080"]);
        assert_eq!(manifest.workdir.as_deref(), Some("/srv"));
        let env: Vec<String> = manifest.env.iter().map(ToString::to_string).collect();
        assert_eq!(env, ["LANG=C.UTF-8", "MODE=prod"]);
        let files: Vec<(PathBuf, &str)> = manifest
            .files
            .iter()
            .map(|file| (file.host.clone(), file.guest.as_str()))
            .collect();
        let conf = project.path().join("conf");
        assert_eq!(
            files,
            [
                (conf.join("a.conf"), "/etc/server/a.conf"),
                (conf.join("b.conf"), "/etc/server/b.conf"),
                (conf.join("notes.txt"), "/srv/README"),
            ]
        );
        assert_eq!(manifest.dirs[0].guest, "/srv/conf");
        assert_eq!(manifest.size, Some(MemorySize::from_mebibytes(64)));
        assert!(!manifest.writable);
        assert_eq!(manifest.tmp, Some(crate::args::TmpSetting::Disk));
        let sized = parse_manifest("[image]\ntmp = \"16M\"\n", project.path()).expect("parses");
        assert_eq!(
            sized.tmp,
            Some(crate::args::TmpSetting::Tmpfs(MemorySize::from_mebibytes(
                16
            )))
        );
        let wrong =
            parse_manifest("[image]\ntmp = \"ram\"\n", project.path()).expect_err("refused");
        assert!(
            wrong.starts_with("image.tmp: `ram` is not a size")
                && wrong.ends_with("or `disk` for a directory of `/`"),
            "{wrong}"
        );
    }

    #[test]
    fn an_empty_manifest_is_all_defaults() {
        let manifest = parse_manifest("", Path::new(".")).expect("parses");
        assert_eq!(
            manifest,
            Manifest {
                writable: true,
                ..Manifest::default()
            }
        );
    }

    #[test]
    fn mistakes_are_named_with_where_they_are() {
        let project = temp_project();
        let error = |text: &str| parse_manifest(text, project.path()).expect_err("refused");
        let unknown = error("program = \"x\"\nargz = [\"a\"]\n");
        assert!(
            unknown.contains("argz") && unknown.contains("line 2"),
            "{unknown}"
        );
        let wrong_type = error("args = \"--port 1\"\n");
        assert!(wrong_type.contains("line 1"), "{wrong_type}");
        assert!(error("workdir = \"srv\"")
            .contains("workdir = \"srv\": the path inside the VM must be absolute"));
        assert!(error("[[file]]\nhost = \"conf/*.conf\"\nguest = \"/etc/x\"\n")
            .contains("file[0]: host = \"conf/*.conf\" is a glob, so guest = \"/etc/x\" must be a directory ending in /"));
        assert!(
            error("[[file]]\nhost = \"conf/*.ini\"\nguest = \"/etc/\"\n")
                .contains("file[0]: host = \"conf/*.ini\" matches no file")
        );
        let missing_guest = error("[[dir]]\nhost = \"conf\"\n");
        assert!(missing_guest.contains("guest"), "{missing_guest}");
        assert!(error("[image]\nsize = \"lots\"\n").contains("image.size: `lots`"));
        assert!(error("env = { \"A=B\" = \"1\" }\n").contains("env: `A=B` is not a variable name"));
    }

    #[test]
    fn the_command_line_environment_wins() {
        let var = |key: &str, value: &str| EnvVar {
            key: key.to_owned(),
            value: value.to_owned(),
        };
        let merged = merged_env(
            &[var("A", "1"), var("B", "2")],
            &[var("B", "3"), var("C", "4")],
        );
        assert_eq!(merged, [var("A", "1"), var("B", "3"), var("C", "4")]);
    }
}
