//! Packages (issue 7): Debian's redis-server, nginx and memcached, unmodified, run from their
//! recipes in packages/ (`pith pkg run`, `pith pkg build`) and driven from the host by
//! Debian's own clients (redis-cli, curl) and plain sockets. scripts/setup installs them.

use pith_tests::*;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A directory of the test's own, emptied first.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pith-pkg-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a test directory");
    dir
}

fn pith(args: &[&str]) -> Outcome {
    let mut command = Command::new(pith_binary());
    command.args(args);
    run_command(command, None)
}

/// `pith pkg build NAME -o IMAGE OPTIONS...`, which must succeed.
fn build(name: &str, image: &Path, options: &[&str]) {
    let image = image.to_str().expect("a UTF-8 path");
    let mut args = vec!["pkg", "build", name, "-o", image];
    args.extend_from_slice(options);
    let outcome = pith(&args);
    assert_eq!(
        outcome.status, 0,
        "pith pkg build {name}: {}",
        outcome.stderr
    );
}

/// Boots `image` with host port `port` forwarded to `guest_port`, and `args` for the program.
fn boot(image: &Path, port: u16, guest_port: u16, args: &[&str]) -> Server {
    let mut command = Command::new(pith_binary());
    command
        .arg("run")
        .arg("--image")
        .arg(image)
        .args(["-p", &format!("127.0.0.1:{port}:{guest_port}")]);
    if !args.is_empty() {
        command.arg("--").args(args);
    }
    Server::start(command)
}

/// redis-cli (Debian's redis-tools) against the VM: its output.
fn redis_cli(port: u16, args: &[&str]) -> String {
    let mut command = Command::new("redis-cli");
    command.args(["-p", &port.to_string()]).args(args);
    let outcome = run_command(command, None);
    assert_eq!(outcome.status, 0, "redis-cli {args:?}: {}", outcome.stderr);
    outcome.stdout
}

fn redis_cli_with_input(port: u16, input: &str) -> String {
    let mut command = Command::new("redis-cli");
    command.args(["-p", &port.to_string()]);
    let outcome = run_command(command, Some(input.as_bytes()));
    assert_eq!(outcome.status, 0, "redis-cli: {}", outcome.stderr);
    outcome.stdout
}

/// SHUTDOWN SAVE or NOSAVE: the server closes the connection rather than answer.
fn shutdown(port: u16, how: &str) {
    let mut command = Command::new("redis-cli");
    command.args(["-p", &port.to_string(), "SHUTDOWN", how]);
    run_command(command, None);
}

/// Kills the QEMU that boots `image` with SIGKILL: a power cut.
fn kill_qemu_of(image: &Path) {
    let pattern = format!("qemu-system.*{}", image.display());
    let killed = Command::new("pkill")
        .args(["-KILL", "-f", &pattern])
        .status()
        .expect("run pkill");
    assert!(killed.success(), "no QEMU matched {pattern}");
}

#[test]
fn redis_from_debian_answers_saves_and_loads_its_data_after_a_reboot() {
    let dir = scratch("redis");
    let image = dir.join("redis.img");
    build("redis", &image, &[]);
    let port = free_port();
    let mut server = boot(&image, port, 6379, &[]);
    server.wait_for_text("Ready to accept connections");

    assert_eq!(redis_cli(port, &["PING"]), "PONG\n");
    assert_eq!(redis_cli(port, &["SET", "greeting", "hello"]), "OK\n");
    assert_eq!(redis_cli(port, &["GET", "greeting"]), "hello\n");
    assert_eq!(redis_cli(port, &["INCR", "counter"]), "1\n");
    assert_eq!(redis_cli(port, &["INCR", "counter"]), "2\n");
    assert_eq!(redis_cli(port, &["LPUSH", "list", "a", "b", "c"]), "3\n");
    assert_eq!(redis_cli(port, &["LRANGE", "list", "0", "-1"]), "c\nb\na\n");
    assert_eq!(redis_cli(port, &["HSET", "hash", "field", "value"]), "1\n");
    assert_eq!(redis_cli(port, &["HGET", "hash", "field"]), "value\n");
    assert_eq!(redis_cli(port, &["SET", "fleeting", "x"]), "OK\n");
    assert_eq!(redis_cli(port, &["EXPIRE", "fleeting", "1000"]), "1\n");
    let ttl: u32 = redis_cli(port, &["TTL", "fleeting"])
        .trim()
        .parse()
        .unwrap();
    assert!((990..=1000).contains(&ttl), "TTL {ttl}");
    assert_eq!(
        redis_cli_with_input(port, "MULTI\nINCR counter\nSET in-transaction yes\nEXEC\n"),
        "OK\nQUEUED\nQUEUED\n3\nOK\n"
    );

    // PUBLISH reaches a subscriber on another connection (RESP's inline commands).
    let mut subscriber = TcpStream::connect(("127.0.0.1", port)).unwrap();
    subscriber
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    subscriber.write_all(b"SUBSCRIBE news\r\n").unwrap();
    let confirmed = b"*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n";
    let mut answer = vec![0u8; confirmed.len()];
    subscriber.read_exact(&mut answer).unwrap();
    assert_eq!(answer, confirmed);
    assert_eq!(redis_cli(port, &["PUBLISH", "news", "extra"]), "1\n");
    let message = b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nextra\r\n";
    let mut answer = vec![0u8; message.len()];
    subscriber.read_exact(&mut answer).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&answer),
        String::from_utf8_lossy(message)
    );
    drop(subscriber);

    // No fork: BGSAVE fails with redis' own error (its reply is a bare "ERR"), at once.
    let started = Instant::now();
    assert_eq!(redis_cli(port, &["BGSAVE"]), "ERR\n\n");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(redis_cli(port, &["SAVE"]), "OK\n");
    assert_eq!(
        redis_cli(port, &["SET", "after-save", "kept by shutdown"]),
        "OK\n"
    );
    // SHUTDOWN saves again and exits; redis-cli sees the connection close.
    shutdown(port, "SAVE");
    let outcome = server.wait();
    assert_eq!(outcome.status, 0, "{}\n{}", outcome.stdout, outcome.stderr);
    assert!(
        outcome.stdout.contains("Saving the final RDB snapshot"),
        "{}",
        outcome.stdout
    );
    assert!(
        outcome.stdout.contains("Can't save in background: fork"),
        "{}",
        outcome.stdout
    );

    // dump.rdb is in the image, and the next boot loads it.
    let listing = pith(&["image", "ls", image.to_str().unwrap(), "/data"]);
    assert!(listing.stdout.contains("dump.rdb"), "{}", listing.stdout);
    let mut server = boot(&image, port, 6379, &[]);
    server.wait_for_text("Ready to accept connections");
    assert_eq!(redis_cli(port, &["GET", "greeting"]), "hello\n");
    assert_eq!(redis_cli(port, &["GET", "counter"]), "3\n");
    assert_eq!(redis_cli(port, &["HGET", "hash", "field"]), "value\n");
    assert_eq!(
        redis_cli(port, &["GET", "after-save"]),
        "kept by shutdown\n"
    );

    // Ctrl-C: pith sends SIGTERM, redis saves and exits cleanly.
    assert_eq!(redis_cli(port, &["SET", "before-ctrl-c", "saved"]), "OK\n");
    server.interrupt();
    let outcome = server.wait();
    assert_eq!(outcome.status, 0, "{}\n{}", outcome.stdout, outcome.stderr);
    assert!(
        outcome.stdout.contains("Received SIGTERM"),
        "{}",
        outcome.stdout
    );
    let mut server = boot(&image, port, 6379, &[]);
    server.wait_for_text("Ready to accept connections");
    assert_eq!(redis_cli(port, &["GET", "before-ctrl-c"]), "saved\n");
    shutdown(port, "NOSAVE");
    server.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn redis_appendonly_always_keeps_every_acknowledged_write_through_a_power_cut() {
    let dir = scratch("redis-aof");
    let image = dir.join("redis.img");
    build("redis", &image, &[]);
    let port = free_port();
    let args = [
        "/etc/redis/redis.conf",
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
    ];
    let mut server = boot(&image, port, 6379, &args);
    server.wait_for_text("Ready to accept connections");
    let writes: String = (0..300).map(|i| format!("SET key{i} value{i}\n")).collect();
    let replies = redis_cli_with_input(port, &writes);
    assert_eq!(replies, "OK\n".repeat(300), "every write acknowledged");
    kill_qemu_of(&image);
    let outcome = server.wait();
    assert_ne!(outcome.status, 0);

    let mut server = boot(&image, port, 6379, &args);
    server.wait_for_text("Ready to accept connections");
    assert_eq!(redis_cli(port, &["DBSIZE"]), "300\n");
    let reads: String = (0..300).map(|i| format!("GET key{i}\n")).collect();
    let expected: String = (0..300).map(|i| format!("value{i}\n")).collect();
    assert_eq!(redis_cli_with_input(port, &reads), expected);
    shutdown(port, "NOSAVE");
    server.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// curl (Debian's) against the VM: its stdout bytes; `options` before the URL.
fn curl(port: u16, path: &str, options: &[&str]) -> Vec<u8> {
    let mut command = Command::new("curl");
    command
        .args(["-sS", "--max-time", "120"])
        .args(options)
        .arg(format!("http://127.0.0.1:{port}{path}"));
    let outcome = run_command(command, None);
    assert_eq!(outcome.status, 0, "curl {path}: {}", outcome.stderr);
    outcome.stdout_bytes
}

/// Tries `probe` on the port until the answer starts with `expect` (QEMU's forwarded port
/// accepts before the server in the VM listens).
fn wait_for_answer(port: u16, probe: &[u8], expect: &[u8]) {
    let deadline = Instant::now() + RUN_TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut answer = vec![0u8; expect.len()];
            if stream.write_all(probe).is_ok()
                && stream.read_exact(&mut answer).is_ok()
                && answer == expect
            {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("port {port} never answered {probe:?} with {expect:?}");
}

#[test]
fn nginx_from_debian_serves_files_with_gzip_keepalive_an_error_page_and_logs_them() {
    let dir = scratch("nginx");
    let site = dir.join("site");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(
        site.join("index.html"),
        "<p>the user's own page</p>\n".repeat(50),
    )
    .unwrap();
    // 100 MB that no compression shrinks: a pseudo-random sequence.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let big: Vec<u8> = (0..100_000_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    std::fs::write(site.join("big.bin"), &big).unwrap();
    let image = dir.join("nginx.img");
    let mapping = format!("{}:/var/www/html", site.display());
    build("nginx", &image, &["--size", "512M", "--dir", &mapping]);
    let port = free_port();
    let mut command = Command::new(pith_binary());
    command
        .args(["run", "-m", "256M", "--image"])
        .arg(&image)
        .args(["-p", &format!("127.0.0.1:{port}:80")]);
    let server = Server::start(command);
    wait_for_answer(port, b"HEAD / HTTP/1.0\r\n\r\n", b"HTTP/1.1 200 OK");

    // The user's page replaced the recipe's; gzip when asked for.
    let page = curl(port, "/", &[]);
    assert_eq!(page, "<p>the user's own page</p>\n".repeat(50).as_bytes());
    let headers = String::from_utf8(curl(
        port,
        "/",
        &["-D", "-", "-o", "/dev/null", "-H", "Accept-Encoding: gzip"],
    ))
    .unwrap();
    assert!(headers.contains("Content-Encoding: gzip"), "{headers}");
    assert_eq!(curl(port, "/", &["--compressed"]), page);
    // Two requests on one connection (keep-alive): curl reuses it and says so.
    let mut command = Command::new("curl");
    command
        .args(["-sS", "-v", "-o", "/dev/null", "-o", "/dev/null"])
        .args([
            format!("http://127.0.0.1:{port}/"),
            format!("http://127.0.0.1:{port}/index.html"),
        ]);
    let both = run_command(command, None);
    assert!(
        both.stderr.contains("Re-using existing connection"),
        "{}",
        both.stderr
    );
    // 100 MB by sendfile, intact.
    assert!(
        curl(port, "/big.bin", &[]) == big,
        "the 100 MB file came back different"
    );
    // A missing file: 404 with the recipe's error page.
    let missing = curl(port, "/no-such-file", &["-w", "%{http_code}"]);
    let missing = String::from_utf8(missing).unwrap();
    assert!(missing.ends_with("404"), "{missing}");
    assert!(
        missing.contains("nginx on Pith has no such file"),
        "{missing}"
    );

    server.interrupt();
    let outcome = server.wait();
    assert_eq!(outcome.status, 0, "{}", outcome.stderr);
    assert!(
        outcome
            .stderr
            .contains("signal 15 (SIGTERM) received, exiting"),
        "{}",
        outcome.stderr
    );
    // The access log is in the image.
    let log = pith(&[
        "image",
        "cat",
        image.to_str().unwrap(),
        "/var/log/nginx/access.log",
    ]);
    assert_eq!(log.status, 0, "{}", log.stderr);
    assert!(
        log.stdout
            .contains("\"GET /big.bin HTTP/1.1\" 200 100000000"),
        "{}",
        log.stdout
    );
    assert!(
        log.stdout.contains("\"GET /no-such-file HTTP/1.1\" 404"),
        "{}",
        log.stdout
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn memcached_from_debian_answers_set_and_get() {
    let port = free_port();
    let mut command = Command::new(pith_binary());
    command.args([
        "pkg",
        "run",
        "memcached",
        "-p",
        &format!("127.0.0.1:{port}:11211"),
    ]);
    let server = Server::start(command);
    wait_for_answer(port, b"version\r\n", b"VERSION 1.6");
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
        .write_all(b"set greeting 7 0 5\r\nhello\r\nget greeting\r\nset n 0 0 1\r\n1\r\nincr n 41\r\ndelete greeting\r\nget greeting\r\n")
        .unwrap();
    let expected =
        "STORED\r\nVALUE greeting 7 5\r\nhello\r\nEND\r\nSTORED\r\n42\r\nDELETED\r\nEND\r\n";
    let mut answer = vec![0u8; expected.len()];
    stream.read_exact(&mut answer).unwrap();
    assert_eq!(String::from_utf8_lossy(&answer), expected);
    server.interrupt();
    let outcome = server.wait();
    assert_eq!(outcome.status, 0, "{}", outcome.stderr);
}

#[test]
fn pkg_lists_the_recipes_and_names_the_apt_command_for_a_missing_program() {
    let listing = pith(&["pkg", "list"]);
    assert_eq!(listing.status, 0, "{}", listing.stderr);
    for (name, debian) in [
        ("memcached", "memcached"),
        ("nginx", "nginx"),
        ("redis", "redis-server"),
    ] {
        assert!(
            listing
                .stdout
                .lines()
                .any(|line| line.starts_with(name) && line.contains(debian)),
            "{}",
            listing.stdout
        );
    }
    // A recipe whose program is not installed.
    let dir = scratch("recipes");
    let recipe = dir.join("ghost");
    std::fs::create_dir_all(&recipe).unwrap();
    std::fs::write(
        recipe.join("package.toml"),
        "description = \"not here\"\ndebian = \"ghost-server\"\nports = [\"9\"]\n",
    )
    .unwrap();
    std::fs::write(
        recipe.join("pith.toml"),
        "program = \"/usr/sbin/ghost-server\"\n",
    )
    .unwrap();
    let packages = dir.to_str().unwrap();
    let outcome = pith(&["pkg", "run", "--packages", packages, "ghost"]);
    assert_eq!(outcome.status, 125, "{}", outcome.stderr);
    assert!(
        outcome.stderr.contains("sudo apt-get install ghost-server"),
        "{}",
        outcome.stderr
    );
    let listing = pith(&["pkg", "list", "--packages", packages]);
    assert!(
        listing.stdout.contains("ghost-server (not installed)"),
        "{}",
        listing.stdout
    );
    // A name with no recipe lists those there are.
    let outcome = pith(&["pkg", "run", "--packages", packages, "nope"]);
    assert_eq!(outcome.status, 125);
    assert!(
        outcome.stderr.contains("no package \"nope\""),
        "{}",
        outcome.stderr
    );
    assert!(
        outcome.stderr.contains("there are: ghost"),
        "{}",
        outcome.stderr
    );
    // A mistake in package.toml names the file.
    std::fs::write(
        recipe.join("package.toml"),
        "description = \"x\"\ndebian = \"y\"\nport = 1\n",
    )
    .unwrap();
    let outcome = pith(&["pkg", "list", "--packages", packages]);
    assert_eq!(outcome.status, 125);
    assert!(
        outcome.stderr.contains("package.toml") && outcome.stderr.contains("port"),
        "{}",
        outcome.stderr
    );
    let _ = std::fs::remove_dir_all(&dir);
}
