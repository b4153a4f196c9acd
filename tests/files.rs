//! Files (issue 4, first part): the file tree a program starts with (tmpfs at `/`, `/tmp` and
//! `/dev/shm`; the `/dev` nodes) and the file syscalls on it, against native Linux.

use pith_tests::*;

#[test]
fn files_directories_and_links_behave_as_on_linux() {
    assert_checks_pass_as_on_linux(
        "files",
        &[Toolchain::GlibcStatic, Toolchain::MuslStatic],
        &[],
        None,
    );
}

#[test]
fn pipes_behave_as_on_linux() {
    assert_checks_pass_as_on_linux(
        "pipes",
        &[Toolchain::GlibcStatic, Toolchain::MuslStatic],
        &[],
        None,
    );
}
