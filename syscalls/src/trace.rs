//! `pith run --trace`: one strace-style line per syscall.

use crate::args::ArgKind;
use crate::errno::Errno;
use crate::platform::{read_c_string, Context};
use crate::table::name_of;
use alloc::string::String;
use core::fmt::Write;

/// Formats `name(args) = result` and sends it to the host.
/// `value` is None for a syscall that does not return (printed `= ?`).
pub fn trace_syscall(
    context: &mut Context,
    number: u64,
    kinds: Option<&[ArgKind]>,
    args: &[u64; 6],
    value: Option<u64>,
) {
    let mut line = String::new();
    match name_of(number) {
        Some(name) => line.push_str(name),
        None => {
            let _ = write!(line, "syscall_{number}");
        }
    }
    line.push('(');
    match kinds {
        Some(kinds) => {
            for (index, kind) in kinds.iter().enumerate() {
                if index > 0 {
                    line.push_str(", ");
                }
                format_arg(context, &mut line, *kind, args[index]);
            }
        }
        // Unknown shape: the six raw registers, as strace does for unknown syscalls.
        None => {
            for (index, arg) in args.iter().enumerate() {
                if index > 0 {
                    line.push_str(", ");
                }
                let _ = write!(line, "{arg:#x}");
            }
        }
    }
    line.push_str(") = ");
    let Some(value) = value else {
        line.push('?');
        context.platform.trace(&line);
        return;
    };
    match Errno::from_return(value) {
        Some(errno) => {
            let _ = write!(line, "-1 {} ({})", errno.name(), errno.message());
        }
        None if value > 0xffff => {
            let _ = write!(line, "{value:#x}");
        }
        None => {
            let _ = write!(line, "{value}");
        }
    }
    context.platform.trace(&line);
}

fn format_arg(context: &Context, line: &mut String, kind: ArgKind, raw: u64) {
    match kind {
        ArgKind::Int => {
            let _ = write!(line, "{}", raw as i64 as i32);
        }
        ArgKind::Unsigned => {
            let _ = write!(line, "{raw}");
        }
        ArgKind::Hex => {
            let _ = write!(line, "{raw:#x}");
        }
        ArgKind::Pointer if raw == 0 => line.push_str("NULL"),
        ArgKind::Pointer => {
            let _ = write!(line, "{raw:#x}");
        }
        ArgKind::Path => match read_c_string(&*context.platform, raw, 256) {
            Ok(bytes) => {
                line.push('"');
                for &byte in &bytes {
                    match byte {
                        b'"' | b'\\' => {
                            line.push('\\');
                            line.push(byte as char);
                        }
                        0x20..=0x7e => line.push(byte as char),
                        _ => {
                            let _ = write!(line, "\\x{byte:02x}");
                        }
                    }
                }
                line.push('"');
            }
            Err(_) => {
                let _ = write!(line, "{raw:#x}");
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::TestMachine;

    #[test]
    fn lines_look_like_strace() {
        let mut machine = TestMachine::new();
        machine.set_trace(true);
        let text = machine.put(b"hi");
        machine.call(1, [1, text, 2, 0, 0, 0]).unwrap();
        let path = machine.put(b"/etc/\"x\"\0");
        let _ = machine.call(89, [path, 0, 0, 0, 0, 0]);
        let _ = machine.call(400, [1, 2, 3, 4, 5, 6]);
        let lines = machine.traces();
        assert_eq!(lines[0], format!("write(1, {text:#x}, 2) = 2"));
        assert_eq!(
            lines[1],
            format!("readlink(\"/etc/\\\"x\\\"\", NULL, 0) = -1 EINVAL (Invalid argument)")
        );
        assert_eq!(
            lines[2],
            "syscall_400(0x1, 0x2, 0x3, 0x4, 0x5, 0x6) = -1 ENOSYS (Function not implemented)"
        );
    }
}

#[cfg(test)]
mod exit_tests {
    use crate::testing::TestMachine;

    #[test]
    fn exit_group_is_traced_before_it_ends_the_program() {
        let mut machine = TestMachine::new();
        machine.set_trace(true);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            machine.call(231, [3, 0, 0, 0, 0, 0])
        }));
        let message = outcome.expect_err("exit_group returns nothing");
        assert_eq!(
            message.downcast_ref::<String>().map(String::as_str),
            Some("exit 3")
        );
        assert_eq!(machine.traces(), ["exit_group(3) = ?"]);
    }
}
