"""A stand-in for qemu-system-x86_64 in pith-cli's tests: it speaks the host link as the kernel would.

It records its argv, its pid and a copy of the image in $FAKE_QEMU_RECORD, then acts out
$FAKE_QEMU_MODE:
  exit        send a Stderr, two Log, a Trace and an Exit(7) record, then exit as isa-debug-exit does
  no-exit     connect, complain on stderr, exit 1 without an Exit record
  no-connect  complain on stderr and exit 1 before connecting
  no-poweroff send Exit(5), then wait without exiting, as a kernel whose power-off failed
  hang        connect, then wait (a SIGINT or SIGTERM ends it, as it ends QEMU)
  stubborn    connect, then wait, ignoring SIGINT and SIGTERM (only SIGKILL ends it)
"""
import os
import shutil
import signal
import socket
import struct
import sys
import time

args = sys.argv[1:]
mode = os.environ["FAKE_QEMU_MODE"]
record = os.environ["FAKE_QEMU_RECORD"]

with open(os.path.join(record, "argv"), "w") as file:
    file.write("\n".join(args))
with open(os.path.join(record, "pid"), "w") as file:
    file.write(str(os.getpid()))
shutil.copy(args[args.index("-initrd") + 1], os.path.join(record, "image.pith"))

if mode == "no-connect":
    sys.stderr.write("fake-qemu: could not load the kernel\n")
    sys.exit(1)

prefix = "socket,id=hostlink,path="
socket_path = next(arg for arg in args if arg.startswith(prefix))[len(prefix):].replace(",,", ",")
link = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
link.connect(socket_path)


def framed(kind, payload):
    return bytes([kind]) + struct.pack("<H", len(payload)) + payload


if mode == "exit":
    stream = (
        framed(1, b"program stderr\n")
        + framed(2, b"\x01kernel warning")
        + framed(2, b"\x03kernel debug")
        + framed(4, b'write(1, "hi\\n", 3) = 3')
        + framed(3, struct.pack("<i", 7))
    )
    # In two pieces that split a record, as a byte stream may arrive.
    link.sendall(stream[:5])
    time.sleep(0.1)
    link.sendall(stream[5:])
    link.close()
    sys.exit((7 << 1) | 1)

if mode == "no-exit":
    link.sendall(framed(1, b"partial output\n"))
    sys.stderr.write("fake-qemu: the guest crashed\n")
    link.close()
    sys.exit(1)

if mode == "no-poweroff":
    link.sendall(framed(3, struct.pack("<i", 5)))

if mode == "stubborn":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
with open(os.path.join(record, "connected"), "w") as file:
    file.write("yes")
time.sleep(60)
sys.exit(0)
