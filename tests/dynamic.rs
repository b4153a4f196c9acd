//! Dynamically linked programs (issue 5): started through their interpreter as Linux starts
//! them, with the libraries `pith run` found and packed (cli/src/deps.rs); C programs built
//! here against glibc and musl, and Debian's own binaries, unmodified.

use pith_tests::*;

/// glibc's and musl's ld.so load a program built here, its libraries, threads and dlopen:
/// the same checks pass as on Linux. libm is not a DT_NEEDED (it is dlopen'ed by name), so
/// the test packs it as a manifest would.
#[test]
fn a_dynamic_c_program_runs_as_on_linux() {
    assert_checks_pass_as_on_linux(
        "dynamic",
        &[Toolchain::GlibcDynamic, Toolchain::MuslDynamic],
        &["--file", "/lib/x86_64-linux-gnu/libm.so.6"],
        None,
    );
}

/// Debian's coreutils: /bin/echo and ls, unmodified, with their libraries from the host.
#[test]
fn debians_coreutils_run_unmodified() {
    let echo = pith_run(
        &[],
        std::path::Path::new("/bin/echo"),
        &["hello", "from", "ld.so"],
        &[],
    );
    assert_eq!(echo.status, 0, "{}", echo.stderr);
    assert_eq!(echo.stdout, "hello from ld.so\n");
    // `ls -a /`: the VM's root holds the program's directories, its libraries' (with Debian's
    // /lib -> usr/lib symlinks) and the mount points.
    let ls = pith_run(&[], std::path::Path::new("/usr/bin/ls"), &["-a", "/"], &[]);
    assert_eq!(ls.status, 0, "{}", ls.stderr);
    let names: Vec<&str> = ls.stdout.lines().collect();
    for name in [
        ".", "..", "dev", "lib", "lib64", "proc", "sys", "tmp", "usr",
    ] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    // ls -l reads extended attributes (for ACLs): none, and no error.
    let long = pith_run(
        &[],
        std::path::Path::new("/usr/bin/ls"),
        &["-ld", "/tmp"],
        &[],
    );
    assert_eq!(long.status, 0, "{}", long.stderr);
    assert!(long.stdout.starts_with("drwxrwxrwt"), "{}", long.stdout);
    assert!(!long.stderr.contains("ls:"), "{}", long.stderr);
}

/// Debian's python3 with its standard library packed (`--dir`): json, hashlib (through
/// OpenSSL), sqlite3, threading and files, the output equal to the host's. The libraries the
/// standard library's own extension modules need (libcrypto, libsqlite3) are packed too.
#[test]
fn debians_python_runs_a_script() {
    let script = r#"
import hashlib, json, os, threading
# hashlib through OpenSSL (its _hashlib module needs libcrypto, packed because the module
# needs it), and sqlite3 in memory (libsqlite3, likewise).
import _hashlib, sqlite3
assert hashlib.sha256 is not None and _hashlib.new("sha256", b"x").hexdigest()
database = sqlite3.connect(":memory:")
database.execute("create table t(x)")
database.execute("insert into t values (42)")
print("sqlite3:", database.execute("select x from t").fetchone()[0])
results = []
def work(n):
    results.append(hashlib.sha256(str(n).encode()).hexdigest()[:12])
threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
for t in threads: t.start()
for t in threads: t.join()
path = "/tmp/pith-python.json"
with open(path, "w") as f:
    json.dump({"hashes": sorted(results), "pid": 1}, f)
with open(path) as f:
    data = json.load(f)
os.remove(path)
print(json.dumps(data["hashes"]), os.path.exists(path))
"#;
    let python = std::path::Path::new("/usr/bin/python3");
    assert!(python.exists(), "install python3 (scripts/setup does)");
    let native = std::process::Command::new(python)
        .args(["-c", script])
        .output()
        .expect("python3 on the host");
    let stdlib = std::fs::read_link("/usr/bin/python3")
        .ok()
        .and_then(|target| {
            target
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "python3.11".to_string());
    let stdlib_dir = format!("/usr/lib/{stdlib}");
    let outcome = pith_run(
        &["-m", "512M", "--dir", &stdlib_dir],
        python,
        &["-c", script],
        &[],
    );
    assert_eq!(outcome.status, 0, "{}", outcome.stderr);
    assert_eq!(outcome.stdout, String::from_utf8_lossy(&native.stdout));
    assert!(outcome.stdout.ends_with(" False\n"), "{}", outcome.stdout);
}

/// The /etc files `pith run` adds (users, groups, hosts, the host name, the resolver), as
/// glibc reads them; a file the user packs at one of those paths wins.
#[test]
fn the_default_etc_files_are_what_glibc_reads() {
    let program = compile("etc", Toolchain::GlibcDynamic);
    let outcome = pith_run(&[], &program, &[], &[]);
    assert_eq!(
        outcome.stdout,
        "user: root, home /root\ngroup: root\nlocalhost: resolves\nhostname: pith\n\
         resolv.conf: nameserver 10.0.2.3\nhosts: 127.0.0.1\tlocalhost\n\
         groups at start: 0\nsetgroups: 0, then 2: 3 5\n",
        "{}",
        outcome.stderr
    );
    let dir = std::env::temp_dir().join(format!("pith-etc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a test directory");
    let hosts = dir.join("hosts");
    std::fs::write(&hosts, "10.1.2.3\tdb\n").expect("hosts");
    let mapping = format!("{}:/etc/hosts", hosts.display());
    let own = pith_run(&["--file", &mapping], &program, &[], &[]);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        own.stdout.contains("hosts: 10.1.2.3\tdb\n"),
        "{}",
        own.stdout
    );
    assert!(
        own.stdout.contains("localhost: does not resolve"),
        "{}",
        own.stdout
    );
}

/// `pith run --missing-files`: each path the program looked for in vain, once, absolute, with
/// the call; nothing for a file that is there, and nothing without the option.
#[test]
fn missing_files_are_reported_once_each() {
    let program = compile("missing", Toolchain::GlibcStatic);
    let outcome = pith_run(&["--missing-files"], &program, &[], &[]);
    assert_eq!(
        outcome.stdout, "done: the present file opened\n",
        "{}",
        outcome.stderr
    );
    let reported: Vec<&str> = outcome
        .stderr
        .lines()
        .filter_map(|line| line.strip_prefix("pith: missing file: "))
        .collect();
    assert_eq!(
        reported,
        [
            "/etc/app.conf (openat)",
            "/tmp/cache/index (newfstatat)",
            "/opt/plugin.so (access)"
        ],
        "{}",
        outcome.stderr
    );
    let quiet = pith_run(&[], &program, &[], &[]);
    assert!(!quiet.stderr.contains("missing file"), "{}", quiet.stderr);
}

/// Issue 5's fork/exec: Pith runs one program, so fork, posix_spawn and system() fail at once
/// with EAGAIN and execve with ENOMEM (Linux's answers when it has no room), each refusal
/// logged with the program's name, and the program goes on.
#[test]
fn fork_spawn_and_exec_fail_cleanly() {
    let program = compile("spawn", Toolchain::GlibcDynamic);
    let outcome = pith_run(&[], &program, &[], &[]);
    assert_eq!(
        outcome.stdout,
        "fork: -1, Resource temporarily unavailable\n\
         posix_spawn: Resource temporarily unavailable\n\
         system: the shell could not run (status 32512)\n\
         execve: Cannot allocate memory\n\
         execve of nothing: No such file or directory\n\
         still running\n",
        "{}",
        outcome.stderr
    );
    assert_eq!(outcome.status, 0);
    let name = program.display().to_string();
    assert!(
        outcome.stderr.contains(&format!(
            "{name}: clone (flags 0x1200011) asked for a new process (fork)"
        )),
        "{}",
        outcome.stderr
    );
    assert!(
        outcome
            .stderr
            .contains(&format!("{name}: execve of {name}")),
        "{}",
        outcome.stderr
    );
}

/// A C++ program (g++, libstdc++, exceptions): the same output as on Linux.
#[test]
fn a_cxx_program_with_exceptions_runs_as_on_linux() {
    let program = compile("cxx", Toolchain::CxxDynamic);
    let native = std::process::Command::new(&program)
        .output()
        .expect("the program on the host");
    let outcome = pith_run(&[], &program, &[], &[]);
    assert_eq!(outcome.status, 0, "{}", outcome.stderr);
    assert_eq!(outcome.stdout, String::from_utf8_lossy(&native.stdout));
    assert!(outcome.stdout.contains("caught thrown through a frame"));
}

/// Debian's sqlite3 runs a SQL script against a database file in the image (`pith build`
/// packs the program, its libraries and the script; `pith run --image` boots it), and a
/// second boot of the same image reads the rows back; a volume works the same way.
#[test]
fn debians_sqlite3_keeps_a_database_across_boots() {
    let dir = std::env::temp_dir().join(format!("pith-sqlite-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a test directory");
    let script = dir.join("setup.sql");
    std::fs::write(
        &script,
        "create table if not exists notes(id integer primary key, body text);\n\
         insert into notes(body) values ('first'), ('second');\n\
         select count(*), group_concat(body, '+') from notes;\n",
    )
    .expect("the script");
    let sqlite3 = std::path::Path::new("/usr/bin/sqlite3");
    assert!(sqlite3.exists(), "install sqlite3 (scripts/setup does)");
    let image = dir.join("app.img");
    let built = std::process::Command::new(pith_binary())
        .args(["build", "--size", "64M", "-o"])
        .arg(&image)
        .arg("--file")
        .arg(format!("{}:/srv/setup.sql", script.display()))
        .arg(sqlite3)
        .args(["/srv/notes.db", ".read /srv/setup.sql"])
        .output()
        .expect("pith build");
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let boot = |args: &[&str]| pith_run_image(&image, args);
    // The recorded arguments run the script; the second boot inserts again and counts 4.
    let first = boot(&[]);
    assert_eq!(first.stdout, "2|first+second\n", "{}", first.stderr);
    let second = boot(&[]);
    assert_eq!(
        second.stdout, "4|first+second+first+second\n",
        "{}",
        second.stderr
    );
    let read = boot(&["/srv/notes.db", "select id, body from notes order by id;"]);
    assert_eq!(
        read.stdout, "1|first\n2|second\n3|first\n4|second\n",
        "{}",
        read.stderr
    );
    assert_eq!(check_volume(&image), Ok(()));
    // The same with the database on a volume.
    let volume = format!("{}:/data", dir.join("volume.img").display());
    let file = format!("{}:/setup.sql", script.display());
    let on_volume = pith_run(
        &["--volume", &volume, "--volume-size", "32M", "--file", &file],
        sqlite3,
        &["/data/notes.db", ".read /setup.sql"],
        &[],
    );
    assert_eq!(on_volume.stdout, "2|first+second\n", "{}", on_volume.stderr);
    let again = pith_run(
        &["--volume", &volume],
        sqlite3,
        &["/data/notes.db", "select count(*) from notes;"],
        &[],
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(again.stdout, "2\n", "{}", again.stderr);
}

/// Debian's perl and openssl, unmodified: a one-liner with hashes and floating point, and a
/// one-second SHA-256 benchmark (its timer is a signal: alarm and SIGALRM).
#[test]
fn debians_perl_and_openssl_run() {
    let perl = pith_run(
        &[],
        std::path::Path::new("/usr/bin/perl"),
        &[
            "-e",
            r#"my %h = (b => 2, a => 1); print join(",", map { "$_=$h{$_}" } sort keys %h), "\n"; printf("%.4f\n", atan2(1, 1) * 4);"#,
        ],
        &[],
    );
    assert_eq!(perl.stdout, "a=1,b=2\n3.1416\n", "{}", perl.stderr);
    let openssl = pith_run(
        &[],
        std::path::Path::new("/usr/bin/openssl"),
        &["speed", "-seconds", "1", "sha256"],
        &[],
    );
    assert_eq!(openssl.status, 0, "{}", openssl.stderr);
    let row = openssl
        .stdout
        .lines()
        .find(|line| line.starts_with("sha256 "))
        .unwrap_or_else(|| panic!("no sha256 row: {}", openssl.stdout));
    let rates: Vec<f64> = row
        .split_whitespace()
        .skip(1)
        .filter_map(|rate| rate.strip_suffix('k')?.parse().ok())
        .collect();
    assert!(
        rates.len() == 6 && rates.iter().all(|&rate| rate > 0.0),
        "{row}"
    );
}

/// ld.so run as the program, as on Linux: `pith run /lib64/ld-linux-x86-64.so.2 /usr/bin/echo`
/// packs echo and its libraries too.
#[test]
fn the_interpreter_runs_a_program_named_to_it() {
    let outcome = pith_run(
        &[],
        std::path::Path::new("/lib64/ld-linux-x86-64.so.2"),
        &["/usr/bin/echo", "through", "ld.so"],
        &[],
    );
    assert_eq!(outcome.status, 0, "{}", outcome.stderr);
    assert_eq!(outcome.stdout, "through ld.so\n");
    assert!(
        pith_messages(&outcome.stderr).is_empty(),
        "{}",
        outcome.stderr
    );
}

/// ASLR: the program (PIE), its heap, the interpreter, the libraries ld.so maps and the stack
/// each move from run to run, and `--no-aslr` keeps every one where it was.
#[test]
fn aslr_moves_the_layout_and_no_aslr_keeps_it() {
    let cat = std::path::Path::new("/usr/bin/cat");
    // The start of the first area of each kind /proc/self/maps names.
    let starts = |options: &[&str]| -> Vec<String> {
        let outcome = pith_run(options, cat, &["/proc/self/maps"], &[]);
        assert_eq!(outcome.status, 0, "{}", outcome.stderr);
        [
            "/usr/bin/cat",
            "[heap]",
            "ld-linux-x86-64.so.2",
            "libc.so.6",
            "[stack]",
        ]
        .iter()
        .map(|name| {
            let line = outcome
                .stdout
                .lines()
                .find(|line| line.ends_with(name))
                .unwrap_or_else(|| panic!("no {name} in {}", outcome.stdout));
            line.split('-').next().unwrap_or_default().to_string()
        })
        .collect()
    };
    let (first, second) = (starts(&[]), starts(&[]));
    for (index, name) in ["the program", "the heap", "ld.so", "libc", "the stack"]
        .iter()
        .enumerate()
    {
        assert_ne!(
            first[index], second[index],
            "{name} did not move between two runs"
        );
    }
    assert_eq!(starts(&["--no-aslr"]), starts(&["--no-aslr"]));
}

/// Debian's dynamically linked busybox (unpacked into build/ by scripts/setup: the package
/// conflicts with busybox-static), applets that do not fork.
#[test]
fn debians_dynamic_busybox_runs_applets() {
    let busybox = workspace_root().join("build/busybox-dynamic/bin/busybox");
    assert!(
        busybox.exists(),
        "{} is missing: scripts/setup unpacks Debian's busybox there",
        busybox.display()
    );
    let echo = pith_run(&[], &busybox, &["echo", "dynamic", "busybox"], &[]);
    assert_eq!(echo.stdout, "dynamic busybox\n", "{}", echo.stderr);
    let sorted = pith_run_with_input(&[], &busybox, &["sort", "-r"], &[], Some(b"b\na\nc\n"));
    assert_eq!(sorted.stdout, "c\nb\na\n", "{}", sorted.stderr);
    let sum = pith_run(&[], &busybox, &["sha256sum", "/etc/hostname"], &[]);
    // sha256("pith\n")
    assert_eq!(
        sum.stdout,
        "a54ab86d521f151271cda4552512b91daf5a6a2809a4492a705313b9bd8aeeeb  /etc/hostname\n",
        "{}",
        sum.stderr
    );
}

/// A program reached through a symlink (as Debian's alternatives make /usr/bin/java) whose
/// DT_RUNPATH is `$ORIGIN/../lib`: it goes in at its real path, the typed one a symlink to
/// it, so ld.so's $ORIGIN finds the library there.
#[test]
fn a_program_behind_a_symlink_finds_its_origin_libraries() {
    let dir = std::env::temp_dir().join(format!("pith-origin-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for sub in ["real/bin", "real/lib"] {
        std::fs::create_dir_all(dir.join(sub)).expect("a test directory");
    }
    std::fs::write(dir.join("lib.c"), "int pith_origin(void) { return 0; }").expect("source");
    std::fs::write(
        dir.join("main.c"),
        "#include <stdio.h>\nint pith_origin(void);\n\
         int main(void) { printf(\"found through $ORIGIN\\n\"); return pith_origin(); }\n",
    )
    .expect("source");
    let gcc = |args: &[&str]| {
        let status = std::process::Command::new("gcc")
            .args(args)
            .current_dir(&dir)
            .status()
            .expect("gcc");
        assert!(status.success(), "gcc {args:?}");
    };
    gcc(&[
        "-shared",
        "-fPIC",
        "-Wl,-soname,libpithorigin.so.1",
        "-o",
        "real/lib/libpithorigin.so.1",
        "lib.c",
    ]);
    std::os::unix::fs::symlink("libpithorigin.so.1", dir.join("real/lib/libpithorigin.so"))
        .expect("symlink");
    gcc(&[
        "main.c",
        "-o",
        "real/bin/prog",
        "-Lreal/lib",
        "-lpithorigin",
        "-Wl,--enable-new-dtags,-rpath,$ORIGIN/../lib",
    ]);
    let link = dir.join("prog-link");
    std::os::unix::fs::symlink(dir.join("real/bin/prog"), &link).expect("symlink");
    let outcome = pith_run(&[], &link, &[], &[]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(outcome.status, 0, "{}", outcome.stderr);
    assert_eq!(outcome.stdout, "found through $ORIGIN\n");
}
