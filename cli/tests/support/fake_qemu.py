"""A stand-in for qemu-system-x86_64 in pith-cli's tests: it speaks the console and the host link as the kernel would.

It records its argv, its pid and a copy of the image in $FAKE_QEMU_RECORD, connects to the
console socket (COM1, `-chardev socket,id=con`) and then to the host-link socket, in the order
QEMU creates its chardevs, writes `connected`, then acts out $FAKE_QEMU_MODE:
  exit        write "hello from the console" on COM1, send a Stderr, two Log, a Trace and an
              Exit(7) record, then exit as isa-debug-exit does; COM1 input is never read
  no-exit     connect, complain on stderr, exit 1 without an Exit record
  no-connect  complain on stderr and exit 1 before connecting
  no-poweroff send Exit(5), then wait without exiting, as a kernel whose power-off failed
  hang        connect, then wait; records the stop signals it gets in `signals`, and exits on
              SIGTERM, as QEMU does
  stubborn    as hang, but ignores SIGINT and SIGTERM (only SIGKILL ends it)
  big-output  write 10 MiB on COM1, with the Exit(3) record sent halfway, then exit
  echo-input  decode the console input records, echo each Input payload back on COM1, and after
              InputEnd write "<end of input>" and exit with Exit(0); records each record's
              kind and length in `input-records`
  flood       write on COM1 without end, as `yes` does
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

# The pattern big-output writes; the test builds the same bytes.
BIG_OUTPUT = bytes(range(256)) * (10 * 1024 * 1024 // 256)


def write_record(name, text, mode="w"):
    with open(os.path.join(record, name), mode) as file:
        file.write(text)


write_record("argv", "\n".join(args))
write_record("pid", str(os.getpid()))
shutil.copy(args[args.index("-initrd") + 1], os.path.join(record, "image.pith"))

if mode == "no-connect":
    sys.stderr.write("fake-qemu: could not load the kernel\n")
    sys.exit(1)


def connect_chardev(chardev_id):
    prefix = "socket,id=%s,path=" % chardev_id
    path = next(arg for arg in args if arg.startswith(prefix))[len(prefix):].replace(",,", ",")
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.connect(path)
    return connection


assert args[args.index("-serial") + 1] == "chardev:con", args
console = connect_chardev("con")
link = connect_chardev("hostlink")
# As the kernel does once its UART is set up: console input may flow from now on.
link.sendall(bytes([5, 0, 0]))


def framed(kind, payload):
    return bytes([kind]) + struct.pack("<H", len(payload)) + payload


def exit_record(status):
    return framed(3, struct.pack("<i", status))


def power_off(status):
    link.close()
    console.close()
    sys.exit((status << 1) | 1)


def read_exact(count):
    data = b""
    while len(data) < count:
        piece = console.recv(count - len(data))
        if not piece:
            raise EOFError("the console closed inside a record")
        data += piece
    return data


def signal_recorder(exits):
    def handler(number, frame):
        write_record("signals", signal.Signals(number).name + "\n", "a")
        if exits:
            sys.exit(0)

    return handler


if mode == "hang":
    signal.signal(signal.SIGINT, signal_recorder(exits=False))
    signal.signal(signal.SIGTERM, signal_recorder(exits=True))
if mode == "stubborn":
    signal.signal(signal.SIGINT, signal_recorder(exits=False))
    signal.signal(signal.SIGTERM, signal_recorder(exits=False))
write_record("connected", "yes")

if mode == "exit":
    console.sendall(b"hello from the console\n")
    stream = (
        framed(1, b"program stderr\n")
        + framed(2, b"\x01kernel warning")
        + framed(2, b"\x03kernel debug")
        + framed(4, b'write(1, "hi\\n", 3) = 3')
        + exit_record(7)
    )
    # In two pieces that split a record, as a byte stream may arrive.
    link.sendall(stream[:5])
    time.sleep(0.1)
    link.sendall(stream[5:])
    power_off(7)

if mode == "no-exit":
    link.sendall(framed(1, b"partial output\n"))
    sys.stderr.write("fake-qemu: the guest crashed\n")
    link.close()
    sys.exit(1)

if mode == "big-output":
    half = len(BIG_OUTPUT) // 2
    console.sendall(BIG_OUTPUT[:half])
    # The console and the host link are separate sockets: pith may see the Exit record, and
    # the host link close, long before it has read the console to its end.
    link.sendall(exit_record(3))
    link.close()
    console.sendall(BIG_OUTPUT[half:])
    power_off(3)

if mode == "echo-input":
    while True:
        kind, length = struct.unpack("<BH", read_exact(3))
        payload = read_exact(length)
        write_record("input-records", "%d %d\n" % (kind, length), "a")
        if kind == 1:
            console.sendall(payload)
        elif kind == 2:
            console.sendall(b"<end of input>\n")
            break
    link.sendall(exit_record(0))
    power_off(0)

if mode == "flood":
    line = b"y\n" * 4096
    while True:
        console.sendall(line)

if mode == "no-poweroff":
    link.sendall(exit_record(5))

time.sleep(60)
sys.exit(0)
