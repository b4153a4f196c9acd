//! Finding the Pith kernel ELF: --kernel, then $PITH_KERNEL, then the build next to `pith`.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Why no kernel could be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KernelPathError {
    #[error("--kernel {}: no such file: pass the path of the pith-kernel ELF (scripts/build builds it)", .0.display())]
    ExplicitMissing(PathBuf),
    #[error("PITH_KERNEL={}: no such file: point PITH_KERNEL at the pith-kernel ELF, or unset it", .0.display())]
    EnvironmentMissing(PathBuf),
    #[error("no Pith kernel found{}: run `scripts/build` (it builds the kernel and the CLI) or pass --kernel PATH", searched_list(.0))]
    NotBuilt(Vec<PathBuf>),
}

fn searched_list(searched: &[PathBuf]) -> String {
    let mut text = String::new();
    for (index, path) in searched.iter().enumerate() {
        let separator = if index == 0 { " (looked for " } else { ", " };
        let _ = write!(text, "{separator}{}", path.display());
    }
    if !searched.is_empty() {
        text.push(')');
    }
    text
}

/// Where the kernel is looked for next to the `pith` executable at `exe`: cargo puts the CLI at
/// target/<profile>/pith and the kernel at target/x86_64-unknown-none/<profile>/pith-kernel.
/// Release comes first, then debug.
pub fn kernel_candidates_beside(exe: &Path) -> Vec<PathBuf> {
    let Some(target_dir) = exe.parent().and_then(Path::parent) else {
        return Vec::new();
    };
    ["release", "debug"]
        .iter()
        .map(|profile| {
            target_dir
                .join("x86_64-unknown-none")
                .join(profile)
                .join("pith-kernel")
        })
        .collect()
}

/// Picks the kernel: `explicit` (--kernel), else `environment` ($PITH_KERNEL, when set and not
/// empty), else the first of [`kernel_candidates_beside`] `exe` for which `is_file` holds.
/// A path the user named that does not exist is an error, never skipped.
pub fn find_kernel(
    explicit: Option<&Path>,
    environment: Option<&OsStr>,
    exe: Option<&Path>,
    is_file: impl Fn(&Path) -> bool,
) -> Result<PathBuf, KernelPathError> {
    if let Some(path) = explicit {
        return if is_file(path) {
            Ok(path.to_path_buf())
        } else {
            Err(KernelPathError::ExplicitMissing(path.to_path_buf()))
        };
    }
    if let Some(value) = environment.filter(|value| !value.is_empty()) {
        let path = PathBuf::from(value);
        return if is_file(&path) {
            Ok(path)
        } else {
            Err(KernelPathError::EnvironmentMissing(path))
        };
    }
    let candidates = exe.map(kernel_candidates_beside).unwrap_or_default();
    match candidates.iter().find(|path| is_file(path)) {
        Some(path) => Ok(path.clone()),
        None => Err(KernelPathError::NotBuilt(candidates)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXE: &str = "/src/pith/target/release/pith";
    const RELEASE: &str = "/src/pith/target/x86_64-unknown-none/release/pith-kernel";
    const DEBUG: &str = "/src/pith/target/x86_64-unknown-none/debug/pith-kernel";

    fn exists<'a>(files: &'a [&'a str]) -> impl Fn(&Path) -> bool + 'a {
        move |path| files.iter().any(|file| Path::new(file) == path)
    }

    fn find(
        explicit: Option<&str>,
        environment: Option<&str>,
        files: &[&str],
    ) -> Result<PathBuf, KernelPathError> {
        find_kernel(
            explicit.map(Path::new),
            environment.map(OsStr::new),
            Some(Path::new(EXE)),
            exists(files),
        )
    }

    #[test]
    fn candidates_beside_the_executable() {
        assert_eq!(
            kernel_candidates_beside(Path::new(EXE)),
            [PathBuf::from(RELEASE), PathBuf::from(DEBUG)]
        );
        // A debug CLI looks in the same two places.
        assert_eq!(
            kernel_candidates_beside(Path::new("/src/pith/target/debug/pith")),
            [PathBuf::from(RELEASE), PathBuf::from(DEBUG)]
        );
        assert!(kernel_candidates_beside(Path::new("pith")).is_empty());
    }

    #[test]
    fn lookup_order() {
        let all = [RELEASE, DEBUG, "/k", "/env-k"];
        assert_eq!(find(Some("/k"), Some("/env-k"), &all), Ok("/k".into()));
        assert_eq!(find(None, Some("/env-k"), &all), Ok("/env-k".into()));
        assert_eq!(find(None, Some(""), &all), Ok(RELEASE.into()));
        assert_eq!(find(None, None, &all), Ok(RELEASE.into()));
        assert_eq!(find(None, None, &[DEBUG]), Ok(DEBUG.into()));
    }

    #[test]
    fn a_named_kernel_that_is_missing_is_an_error_not_skipped() {
        assert_eq!(
            find(Some("/k"), None, &[RELEASE]),
            Err(KernelPathError::ExplicitMissing("/k".into()))
        );
        assert_eq!(
            find(None, Some("/env-k"), &[RELEASE]),
            Err(KernelPathError::EnvironmentMissing("/env-k".into()))
        );
    }

    #[test]
    fn nothing_built_says_what_to_do() {
        let error = find(None, None, &[]).expect_err("nothing exists");
        assert_eq!(
            error,
            KernelPathError::NotBuilt(vec![RELEASE.into(), DEBUG.into()])
        );
        let message = error.to_string();
        assert!(
            message.contains(RELEASE) && message.contains(DEBUG),
            "{message}"
        );
        assert!(
            message.contains("scripts/build") && message.contains("--kernel"),
            "{message}"
        );
        assert_eq!(
            find_kernel(None, None, None, exists(&[])),
            Err(KernelPathError::NotBuilt(Vec::new()))
        );
    }
}
