//! What `pith run` launches, put together from its three sources: the command line, a
//! manifest (`--manifest`), and the record of an image `pith build` made (`--image`). The
//! command line wins: its `-e` replace the same variables, its `--file`/`--dir` add to the
//! manifest's, its `-w` replaces the working directory, and words after the options replace
//! the recorded arguments.

use std::ffi::OsString;

use crate::args::{EnvVar, PathMapping, RunArgs};
use crate::manifest::{merged_env, read_manifest};
use crate::program::{program_from_bytes, read_program, Program};

/// One VM's program and everything around it.
#[derive(Debug)]
pub struct Launch {
    pub program: Program,
    /// Where the program is inside the VM.
    pub program_path: Vec<u8>,
    pub argv0: OsString,
    /// argv[1..].
    pub args: Vec<OsString>,
    pub env: Vec<EnvVar>,
    pub files: Vec<PathMapping>,
    pub dirs: Vec<PathMapping>,
    pub workdir: Option<String>,
    /// `/` is mounted read-only.
    pub root_read_only: bool,
    /// What /tmp is (None: the kernel's default tmpfs).
    pub tmp: Option<crate::args::TmpSetting>,
}

/// Puts `args`, its manifest and its image's record together.
pub fn resolve(args: &RunArgs) -> anyhow::Result<Launch> {
    if let Some(image) = &args.image {
        let recorded = crate::build::read_image_program(image)?;
        let program = program_from_bytes(&recorded.path, recorded.bytes)?;
        let argv0 = recorded.argv0.as_deref().unwrap_or(&recorded.path);
        let argv0 = OsString::from(String::from_utf8_lossy(argv0).into_owned());
        return Ok(Launch {
            program,
            program_path: recorded.path,
            argv0,
            args: arguments(args.image_args(), &recorded.args),
            env: merged_env(&recorded.env, &args.env),
            files: Vec::new(),
            dirs: Vec::new(),
            workdir: args.workdir.clone().or(recorded.workdir),
            root_read_only: !recorded.writable,
            tmp: args.tmp.or(recorded.tmp),
        });
    }
    let manifest = match &args.manifest {
        Some(path) => read_manifest(path)?,
        None => crate::manifest::Manifest {
            writable: true,
            ..Default::default()
        },
    };
    let (program, program_path, argv0, words) = match &manifest.program {
        // The manifest names the program (`place_program` says where it goes), and every
        // word is an argument.
        Some(path) => {
            let program = read_program(path.as_os_str())?;
            let placement =
                crate::image::place_program(&program, path, manifest.program_absolute);
            let argv0 = OsString::from(String::from_utf8_lossy(&placement.argv0).into_owned());
            (program, placement.inside, argv0, args.image_args())
        }
        None if !args.has_command() => anyhow::bail!(
            "no program to run: name one after the options, or as `program = \"...\"` in the manifest"
        ),
        None => {
            // argv[0] as typed, as a shell passes it (`./prog` stays `./prog`).
            let program = read_program(args.program())?;
            let placement =
                crate::image::place_program(&program, std::path::Path::new(args.program()), true);
            (program, placement.inside, args.program().to_owned(), args.program_args())
        }
    };
    let mut files = manifest.files;
    files.extend_from_slice(&args.files);
    let mut dirs = manifest.dirs;
    dirs.extend_from_slice(&args.dirs);
    Ok(Launch {
        program,
        program_path,
        argv0,
        args: arguments(words, &manifest.args),
        env: merged_env(&manifest.env, &args.env),
        files,
        dirs,
        workdir: args.workdir.clone().or(manifest.workdir),
        root_read_only: !manifest.writable,
        tmp: args.tmp.or(manifest.tmp),
    })
}

/// The command line's words if there are any, else the recorded arguments.
fn arguments(words: &[OsString], recorded: &[String]) -> Vec<OsString> {
    if words.is_empty() {
        recorded.iter().map(OsString::from).collect()
    } else {
        words.to_vec()
    }
}
