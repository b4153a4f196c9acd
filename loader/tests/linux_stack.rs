//! Checks `build_initial_stack` byte for byte against the initial stack the host's Linux kernel builds.
//!
//! A static C program dumps the bytes from its initial stack pointer up to the top of the stack. The test
//! reads argv, envp and the auxiliary vector back out of that dump, builds the same stack with
//! `build_initial_stack` and compares. Auxiliary entries Pith does not emit (`AT_RSEQ_*` on Linux 6.3+)
//! are removed from Linux's copy first; each pair removed moves rsp up by exactly 16 bytes.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

#[path = "support/compile.rs"]
mod compile;

use std::path::Path;
use std::process::Command;

use compile::{compile, ScratchDir, GCC};
use pith_loader::stack::{
    AT_BASE, AT_CLKTCK, AT_EGID, AT_ENTRY, AT_EUID, AT_EXECFN, AT_FLAGS, AT_GID, AT_HWCAP,
    AT_HWCAP2, AT_MINSIGSTKSZ, AT_NULL, AT_PAGESZ, AT_PHDR, AT_PHENT, AT_PHNUM, AT_PLATFORM,
    AT_RANDOM, AT_SECURE, AT_SYSINFO_EHDR, AT_UID,
};
use pith_loader::{build_initial_stack, AuxValues, StackSpec};

const DUMP_STACK: &str = r#"
#include <elf.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv, char **envp) {
    unsigned char *rsp = (unsigned char *)argv - sizeof(long);
    char **end = envp;
    while (*end) end++;
    const char *execfn = 0;
    for (Elf64_auxv_t *aux = (Elf64_auxv_t *)(end + 1); aux->a_type != AT_NULL; aux++)
        if (aux->a_type == AT_EXECFN) execfn = (const char *)aux->a_un.a_val;
    if (!execfn) return 2;
    unsigned char *top = (unsigned char *)execfn + strlen(execfn) + 1 + 8;
    printf("%lx\n", (unsigned long)rsp);
    for (unsigned char *byte = rsp; byte < top; byte++) printf("%02x", *byte);
    printf("\n");
    return argc == 0;
}
"#;

/// Executes argv[1] with an empty argv and a one-variable environment.
const EXEC_WITHOUT_ARGV: &str = r#"
#include <unistd.h>
int main(int argc, char **argv) {
    char *child_argv[] = { 0 };
    char *child_envp[] = { "ONLY=1", 0 };
    if (argc < 2) return 126;
    execve(argv[1], child_argv, child_envp);
    return 127;
}
"#;

/// The auxiliary vector types `build_initial_stack` writes.
const EMITTED: [u64; 21] = [
    AT_SYSINFO_EHDR,
    AT_MINSIGSTKSZ,
    AT_HWCAP,
    AT_PAGESZ,
    AT_CLKTCK,
    AT_PHDR,
    AT_PHENT,
    AT_PHNUM,
    AT_BASE,
    AT_FLAGS,
    AT_ENTRY,
    AT_UID,
    AT_EUID,
    AT_GID,
    AT_EGID,
    AT_SECURE,
    AT_RANDOM,
    AT_HWCAP2,
    AT_EXECFN,
    AT_PLATFORM,
    AT_NULL,
];

struct Dump {
    rsp: u64,
    bytes: Vec<u8>,
}

impl Dump {
    fn top(&self) -> u64 {
        self.rsp + self.bytes.len() as u64
    }

    fn word(&self, address: u64) -> u64 {
        let index = (address - self.rsp) as usize;
        u64::from_le_bytes(self.bytes[index..index + 8].try_into().expect("8 bytes"))
    }

    fn c_string(&self, address: u64) -> Vec<u8> {
        let start = (address - self.rsp) as usize;
        let len = self.bytes[start..]
            .iter()
            .position(|&byte| byte == 0)
            .expect("NUL-terminated string inside the dump");
        self.bytes[start..start + len].to_vec()
    }
}

fn parse_dump(stdout: &[u8]) -> Dump {
    let text = std::str::from_utf8(stdout).expect("dump is ASCII");
    let mut lines = text.lines();
    let rsp = u64::from_str_radix(lines.next().expect("rsp line"), 16).expect("hex rsp");
    let hex = lines.next().expect("bytes line");
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|index| u8::from_str_radix(&hex[index..index + 2], 16).expect("hex byte"))
        .collect();
    Dump { rsp, bytes }
}

/// Runs `command`, which ends up executing the dump program with `requested_argv`, and checks the stack
/// Linux built against ours for the same request. `received_argv` is what the program must have got.
fn compare_with_linux(command: &mut Command, requested_argv: &[&[u8]], received_argv: &[&[u8]]) {
    let output = command.output().expect("run the dump program");
    assert!(
        output.status.success(),
        "dump program failed: {}",
        output.status
    );
    let linux = parse_dump(&output.stdout);
    assert_eq!(linux.top() % 4096, 0, "Linux's stack top is page aligned");
    assert_eq!(linux.word(linux.top() - 8), 0, "end marker");

    // Read the tables back out of Linux's stack.
    let argc = linux.word(linux.rsp) as usize;
    let argv_pointers: Vec<u64> = (0..argc)
        .map(|index| linux.word(linux.rsp + 8 + 8 * index as u64))
        .collect();
    let envp_base = linux.rsp + 8 * (argc as u64 + 2);
    let envc = (0..)
        .take_while(|&index| linux.word(envp_base + 8 * index) != 0)
        .count();
    let envp_pointers: Vec<u64> = (0..envc)
        .map(|index| linux.word(envp_base + 8 * index as u64))
        .collect();
    let auxv_base = envp_base + 8 * (envc as u64 + 1);
    let mut auxv = Vec::new();
    loop {
        let address = auxv_base + 16 * auxv.len() as u64;
        let pair = (linux.word(address), linux.word(address + 8));
        auxv.push(pair);
        if pair.0 == AT_NULL {
            break;
        }
    }
    let auxv_end = auxv_base + 16 * auxv.len() as u64;
    let value = |key: u64| {
        auxv.iter()
            .find(|&&(entry, _)| entry == key)
            .map(|&(_, value)| value)
    };
    let required =
        |key: u64| value(key).unwrap_or_else(|| panic!("Linux gave no auxv entry {key}"));

    let argv: Vec<Vec<u8>> = argv_pointers.iter().map(|&p| linux.c_string(p)).collect();
    let envp: Vec<Vec<u8>> = envp_pointers.iter().map(|&p| linux.c_string(p)).collect();
    assert_eq!(argv, received_argv);
    let execfn = linux.c_string(required(AT_EXECFN));
    let platform_address = required(AT_PLATFORM);
    let platform = linux.c_string(platform_address);
    assert_eq!(platform, b"x86_64");
    let random_address = required(AT_RANDOM);
    let random_index = (random_address - linux.rsp) as usize;
    let random: [u8; 16] = linux.bytes[random_index..random_index + 16]
        .try_into()
        .expect("16 bytes");

    // Linux's arch_align_stack() subtracted a random amount below the strings; recover an offset that
    // lands on the same 16-byte boundary.
    let arg_start = argv_pointers[0];
    let aligned = platform_address + platform.len() as u64 + 1;
    let random_offset = (arg_start - aligned).saturating_sub(15);

    let envp_slices: Vec<&[u8]> = envp.iter().map(Vec::as_slice).collect();
    let spec = StackSpec {
        stack_top: linux.top(),
        random_offset,
        argv: requested_argv,
        envp: &envp_slices,
        execfn: &execfn,
        platform: &platform,
        random,
        aux: AuxValues {
            sysinfo_ehdr: value(AT_SYSINFO_EHDR),
            minsigstksz: required(AT_MINSIGSTKSZ),
            hwcap: required(AT_HWCAP),
            pagesz: required(AT_PAGESZ),
            clktck: required(AT_CLKTCK),
            phdr: required(AT_PHDR),
            phent: required(AT_PHENT),
            phnum: required(AT_PHNUM),
            base: required(AT_BASE),
            flags: required(AT_FLAGS),
            entry: required(AT_ENTRY),
            uid: required(AT_UID),
            euid: required(AT_EUID),
            gid: required(AT_GID),
            egid: required(AT_EGID),
            secure: required(AT_SECURE),
            hwcap2: required(AT_HWCAP2),
        },
    };
    let ours = build_initial_stack(&spec).expect("builds");

    // Linux's image with the auxv entries Pith leaves out removed.
    let kept: Vec<(u64, u64)> = auxv
        .iter()
        .copied()
        .filter(|(key, _)| EMITTED.contains(key))
        .collect();
    let removed = (auxv.len() - kept.len()) as u64;
    let mut expected = linux.bytes[..(auxv_base - linux.rsp) as usize].to_vec();
    for (key, value) in &kept {
        expected.extend_from_slice(&key.to_le_bytes());
        expected.extend_from_slice(&value.to_le_bytes());
    }
    expected.extend_from_slice(&linux.bytes[(auxv_end - linux.rsp) as usize..]);

    assert_eq!(ours.rsp, linux.rsp + 16 * removed, "rsp");
    assert_eq!(ours.auxv, kept, "auxiliary vector");
    assert_eq!(ours.arg_start, arg_start);
    assert_eq!(ours.env_end, required(AT_EXECFN));
    if ours.bytes != expected {
        let first = ours
            .bytes
            .iter()
            .zip(&expected)
            .position(|(a, b)| a != b)
            .unwrap_or(ours.bytes.len().min(expected.len()));
        panic!(
            "stack images differ at rsp+{first:#x} (ours {} bytes, Linux's {} bytes after removing {removed} auxv pairs)",
            ours.bytes.len(),
            expected.len()
        );
    }
}

fn run(program: &Path, args: &[&str], env: &[(&str, &str)]) {
    let mut argv: Vec<&[u8]> = vec![program.as_os_str().as_encoded_bytes()];
    argv.extend(args.iter().map(|arg| arg.as_bytes()));
    compare_with_linux(
        Command::new(program)
            .args(args)
            .env_clear()
            .envs(env.iter().copied()),
        &argv,
        &argv,
    );
}

#[test]
fn matches_the_host_kernel() {
    let scratch = ScratchDir::new("linux-stack");
    let program = compile(GCC, &["-static", "-O0"], DUMP_STACK, scratch.path(), "dump");
    run(
        &program,
        &["one", "", "three"],
        &[("HOME", "/root"), ("X", "")],
    );
    run(&program, &[], &[]);
    run(
        &program,
        &["a-longer-argument-to-shift-alignment"],
        &[("A", "1")],
    );
}

/// Linux 5.18+ turns an empty argv into [""]; so does `build_initial_stack`.
#[test]
fn matches_the_host_kernel_with_an_empty_argv() {
    let scratch = ScratchDir::new("linux-stack-empty-argv");
    let program = compile(GCC, &["-static", "-O0"], DUMP_STACK, scratch.path(), "dump");
    let launcher = compile(GCC, &["-O0"], EXEC_WITHOUT_ARGV, scratch.path(), "launch");
    compare_with_linux(Command::new(launcher).arg(&program), &[], &[b""]);
}
