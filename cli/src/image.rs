//! Building the image (QEMU's initrd) that hands the program, its argv and its environment to the kernel.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use pith_loader::image::ImageBuilder;

use crate::args::EnvVar;
use crate::program::Program;

/// The image's file name inside the run's temporary directory.
pub const IMAGE_FILE_NAME: &str = "image.pith";

/// What goes into the image besides the program's bytes.
#[derive(Debug)]
pub struct ImageContents<'a> {
    pub program: &'a Program,
    /// argv[0]: the program as the user typed it, as a shell passes it.
    pub argv0: &'a OsStr,
    /// argv[1..].
    pub args: &'a [OsString],
    /// The program's whole environment.
    pub env: &'a [EnvVar],
}

/// The program's path inside the VM: `/` and its file name.
pub fn path_in_vm(file_name: &OsStr) -> Vec<u8> {
    let mut path = b"/".to_vec();
    path.extend_from_slice(file_name.as_encoded_bytes());
    path
}

/// Builds the image bytes with the loader's builder, so the format lives in one place.
pub fn build_image(contents: &ImageContents<'_>) -> anyhow::Result<Vec<u8>> {
    let program_path = path_in_vm(&contents.program.file_name);
    let env: Vec<String> = contents.env.iter().map(EnvVar::to_string).collect();
    ImageBuilder::new(&contents.program.bytes, &program_path)
        .arg(contents.argv0.as_encoded_bytes())
        .args(contents.args.iter().map(|arg| arg.as_encoded_bytes()))
        .envs(env.iter().map(String::as_bytes))
        .build()
        .with_context(|| {
            format!(
                "packing {} into an image",
                Path::new(contents.argv0).display()
            )
        })
}

/// Writes the image into `directory` and returns its path.
pub fn write_image(directory: &Path, image: &[u8]) -> anyhow::Result<PathBuf> {
    let path = directory.join(IMAGE_FILE_NAME);
    std::fs::write(&path, image).with_context(|| {
        format!(
            "writing the image to {} (is the disk full?)",
            path.display()
        )
    })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pith_loader::image::Image;

    #[test]
    fn the_image_holds_the_program_its_path_argv_and_only_the_given_environment() {
        let program = Program {
            bytes: b"\x7fELF pretend".to_vec(),
            file_name: "hello".into(),
        };
        let image = build_image(&ImageContents {
            program: &program,
            argv0: OsStr::new("./bin/hello"),
            args: &["-v".into(), "b c".into(), "".into()],
            env: &[
                EnvVar {
                    key: "A".into(),
                    value: "1".into(),
                },
                EnvVar {
                    key: "EMPTY".into(),
                    value: String::new(),
                },
            ],
        })
        .expect("builds");
        let image = Image::parse(&image).expect("parses");
        assert_eq!(image.program(), b"\x7fELF pretend");
        assert_eq!(image.program_path(), b"/hello");
        assert_eq!(
            image.args().collect::<Vec<_>>(),
            [&b"./bin/hello"[..], b"-v", b"b c", b""]
        );
        assert_eq!(image.env().collect::<Vec<_>>(), [&b"A=1"[..], b"EMPTY="]);
    }

    #[test]
    fn a_file_name_that_is_not_utf8_is_kept_byte_for_byte() {
        use std::os::unix::ffi::OsStrExt as _;
        assert_eq!(path_in_vm(OsStr::from_bytes(b"caf\xe9")), b"/caf\xe9");
    }
}
