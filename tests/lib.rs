//! Shared helpers for the integration tests that boot Pith in QEMU: compiling the C test
//! programs with gcc and musl-gcc, running them under `pith run` and natively, with a timeout.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// No test run may take longer than this: a hang is a failure, not a stuck CI.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(120);

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_path_buf()
}

/// Checks an ext4 volume or image as Linux would find it: on a copy, e2fsck replays the
/// journal (`-E journal_only`; Pith leaves the last commits there, as after a power cut), then
/// checks everything (`-fn`). `e2fsck -fn` alone skips the journal and so checks the state
/// before the last commits. Ok, or e2fsck's output.
pub fn check_volume(image: &Path) -> Result<(), String> {
    let copy = image.with_extension(format!("fsck-{}", std::process::id()));
    std::fs::copy(image, &copy).map_err(|error| format!("copying {}: {error}", image.display()))?;
    let run = |arguments: &[&str]| {
        Command::new("e2fsck")
            .args(arguments)
            .arg(&copy)
            .output()
            .map_err(|error| format!("e2fsck (e2fsprogs): {error}"))
    };
    let outcome = run(&["-E", "journal_only", "-y"]).and_then(|replay| {
        if !replay.status.success() {
            return Err(format!(
                "e2fsck -E journal_only: {}{}",
                String::from_utf8_lossy(&replay.stdout),
                String::from_utf8_lossy(&replay.stderr)
            ));
        }
        let check = run(&["-fn"])?;
        if check.status.success() {
            Ok(())
        } else {
            Err(format!(
                "e2fsck -fn after the journal replay: {}{}",
                String::from_utf8_lossy(&check.stdout),
                String::from_utf8_lossy(&check.stderr)
            ))
        }
    });
    let _ = std::fs::remove_file(&copy);
    outcome
}

/// The `pith` binary and the kernel, as `scripts/build` leaves them.
pub fn pith_binary() -> PathBuf {
    let path = workspace_root().join("target/release/pith");
    let kernel = workspace_root().join("target/x86_64-unknown-none/release/pith-kernel");
    assert!(
        path.exists() && kernel.exists(),
        "{} or {} is missing: run scripts/build first (scripts/test does)",
        path.display(),
        kernel.display()
    );
    path
}

/// How a C test program is compiled and linked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Toolchain {
    /// gcc -static: glibc, a non-PIE ET_EXEC at 0x400000.
    GlibcStatic,
    /// gcc -static-pie: glibc, ET_DYN placed at a random base.
    GlibcStaticPie,
    /// musl-gcc -static (Debian's musl-tools).
    MuslStatic,
    /// plain gcc: dynamically linked against glibc.
    GlibcDynamic,
    /// plain musl-gcc: dynamically linked, interpreter /lib/ld-musl-x86_64.so.1.
    MuslDynamic,
    /// plain g++: C++ against libstdc++, dynamically linked. Builds tests/programs/NAME.cpp.
    CxxDynamic,
    /// Debian's Go (golang-go), CGO_ENABLED=0: a static binary with Go's own runtime. Builds
    /// tests/programs/NAME.go.
    Go,
}

pub const STATIC_TOOLCHAINS: [Toolchain; 3] = [
    Toolchain::GlibcStatic,
    Toolchain::GlibcStaticPie,
    Toolchain::MuslStatic,
];

impl Toolchain {
    fn command(self) -> (&'static str, &'static [&'static str], &'static str) {
        match self {
            Toolchain::GlibcStatic => ("gcc", &["-static", "-no-pie"], "glibc"),
            Toolchain::GlibcStaticPie => ("gcc", &["-static-pie", "-fPIE"], "glibc-pie"),
            Toolchain::MuslStatic => ("musl-gcc", &["-static", "-no-pie"], "musl"),
            Toolchain::GlibcDynamic => ("gcc", &[], "dynamic"),
            Toolchain::MuslDynamic => ("musl-gcc", &[], "musl-dynamic"),
            Toolchain::CxxDynamic => ("g++", &[], "cxx"),
            Toolchain::Go => ("go", &["build"], "go"),
        }
    }
}

static COMPILE_LOCK: Mutex<()> = Mutex::new(());

/// Compiles tests/programs/NAME.c (NAME.go for Go) with `toolchain` (once per test run) and
/// returns the binary.
pub fn compile(name: &str, toolchain: Toolchain) -> PathBuf {
    let (compiler, flags, suffix) = toolchain.command();
    let extension = match toolchain {
        Toolchain::Go => "go",
        Toolchain::CxxDynamic => "cpp",
        _ => "c",
    };
    let source = workspace_root()
        .join("tests/programs")
        .join(format!("{name}.{extension}"));
    let out_dir = workspace_root().join("target/test-programs");
    let output = out_dir.join(format!("{name}-{suffix}"));
    let _guard = COMPILE_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let fresh = match (std::fs::metadata(&output), std::fs::metadata(&source)) {
        (Ok(binary), Ok(source)) => binary.modified().ok() >= source.modified().ok(),
        _ => false,
    };
    if fresh {
        return output;
    }
    std::fs::create_dir_all(&out_dir).expect("create target/test-programs");
    let temporary = output.with_extension("tmp");
    let mut command = Command::new(compiler);
    command.args(flags);
    if toolchain == Toolchain::Go {
        command.env("CGO_ENABLED", "0").arg("-o");
    } else {
        command.args(["-O2", "-Wall", "-o"]);
    }
    let result = command
        .arg(&temporary)
        .arg(&source)
        .output()
        .unwrap_or_else(|error| {
            let package = match compiler {
                "musl-gcc" => "musl-tools",
                "go" => "golang-go",
                "g++" => "g++",
                _ => "gcc",
            };
            panic!("cannot run {compiler} ({error}): install it with `apt-get install {package}`")
        });
    assert!(
        result.status.success(),
        "{compiler} {} failed:\n{}",
        source.display(),
        String::from_utf8_lossy(&result.stderr)
    );
    std::fs::rename(&temporary, &output).expect("move the compiled program into place");
    output
}

/// What a run produced.
#[derive(Debug)]
pub struct Outcome {
    /// The exit status, or 128 + signal if it was killed.
    pub status: i32,
    /// Stdout as text (lossy); `stdout_bytes` is exact.
    pub stdout: String,
    pub stdout_bytes: Vec<u8>,
    pub stderr: String,
}

/// Runs a command to completion with stdin from `input`, failing the test if it outlives
/// RUN_TIMEOUT.
pub fn run_command(command: Command, input: Option<&[u8]>) -> Outcome {
    run_command_within(command, input, RUN_TIMEOUT)
}

/// As `run_command`, with a longer limit for a run that is long by design (a gigabyte through
/// an emulated network).
pub fn run_command_within(mut command: Command, input: Option<&[u8]>, limit: Duration) -> Outcome {
    use std::os::unix::process::ExitStatusExt;
    command.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let description = format!("{command:?}");
    let mut child = command
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {description}: {error}"));
    if let Some(input) = input {
        let mut stdin = child.stdin.take().expect("piped stdin");
        let input = input.to_vec();
        std::thread::spawn(move || {
            use std::io::Write;
            let _ = stdin.write_all(&input);
        });
    }
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stdout.read_to_end(&mut bytes);
        bytes
    });
    let err_reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stderr.read_to_end(&mut bytes);
        bytes
    });
    let status = wait_or_kill(&mut child, &description, limit);
    let stdout_bytes = out_reader.join().unwrap_or_default();
    let stdout = String::from_utf8_lossy(&stdout_bytes).into_owned();
    let stderr = String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned();
    let status = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    Outcome {
        status,
        stdout,
        stdout_bytes,
        stderr,
    }
}

/// `pith run [options] PROGRAM [args]`, with `env` passed as `-e` options.
/// Waits for `child` to exit; after `limit` kills it and fails the test as a hang.
fn wait_or_kill(
    child: &mut std::process::Child,
    what: &str,
    limit: Duration,
) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} still running after {limit:?}: a hang");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub fn pith_run(options: &[&str], program: &Path, args: &[&str], env: &[&str]) -> Outcome {
    pith_run_with_input(options, program, args, env, None)
}

pub fn pith_run_with_input(
    options: &[&str],
    program: &Path,
    args: &[&str],
    env: &[&str],
    input: Option<&[u8]>,
) -> Outcome {
    let mut command = Command::new(pith_binary());
    command.arg("run").args(options);
    for variable in env {
        command.args(["-e", variable]);
    }
    command.arg(program).args(args);
    run_command(command, input)
}

/// `pith run --image IMAGE ARGS`: boots an image `pith build` made.
pub fn pith_run_image(image: &Path, args: &[&str]) -> Outcome {
    let mut command = Command::new(pith_binary());
    command.args(["run", "--image"]).arg(image).args(args);
    run_command(command, None)
}

/// The same program natively, with exactly `env` as its environment, in that order
/// (`env -i` keeps the order; std's Command would sort it).
pub fn native_run(program: &Path, args: &[&str], env: &[&str]) -> Outcome {
    let mut command = Command::new("env");
    command.arg("-i").args(env).arg(program).args(args);
    run_command(command, None)
}

/// The lines of `pith: ...` kernel and CLI messages, without the accelerator notice.
pub fn pith_messages(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|line| line.starts_with("pith: ") && !line.starts_with("pith: accelerator"))
        .collect()
}

/// Starts `pith run` with its stdout piped, waits until the program prints `marker` on a line,
/// sends `pith` SIGINT (a Ctrl-C), and returns what the run produced in all.
pub fn pith_run_and_interrupt(
    options: &[&str],
    program: &Path,
    args: &[&str],
    marker: &str,
) -> Outcome {
    use std::io::BufRead;
    use std::os::unix::process::ExitStatusExt;
    let mut command = Command::new(pith_binary());
    command.arg("run").args(options).arg(program).args(args);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("start pith");
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut stderr = child.stderr.take().expect("piped stderr");
    let err_reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stderr.read_to_end(&mut bytes);
        bytes
    });
    let mut seen = String::new();
    let mut line = String::new();
    while stdout.read_line(&mut line).unwrap_or(0) > 0 {
        seen.push_str(&line);
        let found = line.trim_end() == marker;
        line.clear();
        if found {
            break;
        }
    }
    assert!(
        seen.ends_with(&format!("{marker}\n")),
        "the program never printed {marker:?}: {seen:?}"
    );
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(interrupted.success());
    let out_reader = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = stdout.read_to_string(&mut rest);
        rest
    });
    let status = wait_or_kill(&mut child, "pith after Ctrl-C", RUN_TIMEOUT);
    seen.push_str(&out_reader.join().unwrap_or_default());
    let stderr = String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned();
    let status = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    Outcome {
        status,
        stdout_bytes: seen.clone().into_bytes(),
        stdout: seen,
        stderr,
    }
}

/// Runs the check program tests/programs/NAME.c (it prints "ok ..." or "FAIL ..." lines and
/// exits with its failures) for each toolchain: natively first, where every check must pass,
/// then under `pith run` with `options` and `input` on stdin, whose output and status must be
/// Linux's. Returns Pith's outcomes, for further checks.
pub fn assert_checks_pass_as_on_linux(
    name: &str,
    toolchains: &[Toolchain],
    options: &[&str],
    input: Option<&[u8]>,
) -> Vec<Outcome> {
    toolchains
        .iter()
        .map(|&toolchain| {
            let program = compile(name, toolchain);
            let mut native_command = Command::new(&program);
            native_command.env_clear();
            let native = run_command(native_command, input);
            assert_eq!(
                native.status, 0,
                "{name}: the checks must pass on Linux first: {}",
                native.stdout
            );
            let outcome = pith_run_with_input(options, &program, &[], &[], input);
            let failed: Vec<&str> = outcome
                .stdout
                .lines()
                .filter(|line| line.starts_with("FAIL"))
                .collect();
            assert_eq!(
                outcome.status, 0,
                "{name} {toolchain:?}: {failed:?}\n{}",
                outcome.stderr
            );
            assert_eq!(outcome.stdout, native.stdout, "{name} {toolchain:?}");
            outcome
        })
        .collect()
}

/// A `pith run` left running in the background (a server): its stdout read line by line as
/// it comes, its stderr kept. Dropping it kills it.
pub struct Server {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
    stderr: Option<std::thread::JoinHandle<Vec<u8>>>,
}

impl Server {
    /// Starts `command` (a `pith run`, perhaps behind `ip netns exec`).
    pub fn start(mut command: Command) -> Server {
        use std::io::BufRead;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {command:?}: {error}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let (sender, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = stderr.read_to_end(&mut bytes);
            bytes
        });
        Server {
            child,
            lines,
            seen: Vec::new(),
            stderr: Some(stderr),
        }
    }

    /// Waits for a line of stdout that starts with `prefix`, and returns it; fails the test
    /// (with the output so far) if the server exits first or RUN_TIMEOUT passes.
    pub fn wait_for_line(&mut self, prefix: &str) -> String {
        self.wait_for(prefix, |line| line.starts_with(prefix))
    }

    /// Waits for a line of stdout that contains `text` (as `wait_for_line`).
    pub fn wait_for_text(&mut self, text: &str) -> String {
        self.wait_for(text, |line| line.contains(text))
    }

    fn wait_for(&mut self, wanted: &str, matches: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + RUN_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if matches(&line) {
                        return line;
                    }
                }
                Err(_) => {
                    let _ = self.child.kill();
                    let stderr = self.take_stderr();
                    panic!(
                        "the server never printed {wanted:?}; stdout: {:?}\nstderr: {stderr}",
                        self.seen
                    );
                }
            }
        }
    }

    /// Sends SIGINT to `pith` (Ctrl-C at a terminal).
    pub fn interrupt(&self) {
        let sent = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success());
    }

    fn take_stderr(&mut self) -> String {
        self.stderr
            .take()
            .and_then(|reader| reader.join().ok())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    /// Waits for the server to exit (failing the test as a hang after RUN_TIMEOUT): its
    /// status and everything it printed.
    pub fn wait(mut self) -> Outcome {
        use std::os::unix::process::ExitStatusExt;
        let status = wait_or_kill(&mut self.child, "the server", RUN_TIMEOUT);
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        let stdout = self.seen.join("\n");
        let stderr = self.take_stderr();
        Outcome {
            status: status
                .code()
                .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
            stdout_bytes: stdout.clone().into_bytes(),
            stdout,
            stderr,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free TCP and UDP port on the host's loopback (free when asked; the tests take their
/// chance that nothing else takes it before QEMU does).
pub fn free_port() -> u16 {
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = tcp.local_addr().expect("its address").port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A QEMU wrapper in `dir` that turns `pith run`'s machine into q35 and its virtio-mmio
/// devices into virtio-pci ones (and silences SeaBIOS's serial console, which is the
/// program's): the kernel's PCI paths, which `pith` itself never asks for.
pub fn q35_wrapper(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let wrapper = dir.join("qemu-q35");
    std::fs::write(
        &wrapper,
        r#"#!/bin/bash
args=()
for a in "$@"; do
  case "$a" in
    microvm,*) a=q35 ;;
    virtio-blk-device,*) a="virtio-blk-pci,${a#virtio-blk-device,}" ;;
    virtio-net-device,*) a="virtio-net-pci,${a#virtio-net-device,}" ;;
  esac
  args+=("$a")
done
exec qemu-system-x86_64 "${args[@]}" -fw_cfg name=etc/sercon-port,string=0
"#,
    )
    .expect("write the QEMU wrapper");
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755))
        .expect("make the QEMU wrapper executable");
    wrapper
}
