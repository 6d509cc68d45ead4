#!/usr/bin/env python3
"""Drive `freightliner repl` on a pseudo-terminal, for repl_spec.lua.

usage: repl_pty.py BINARY HISTORY_FILE
Types `fl.dig<Tab>`, `.sha2<Tab>`, `"abc")<Enter>`, then Ctrl-D, and prints
everything the terminal showed. Exits 1 if the REPL did not end in time.
"""
import os
import pty
import select
import sys
import time

binary, history = sys.argv[1], sys.argv[2]
pid, fd = pty.fork()
if pid == 0:
    os.environ["FREIGHTLINER_HISTORY"] = history
    os.environ["TERM"] = "dumb"
    os.execv(binary, [binary, "repl"])

seen = b""


def read_until(marker, timeout=10.0):
    global seen
    end = time.time() + timeout
    while time.time() < end:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            try:
                data = os.read(fd, 4096)
            except OSError:
                return False
            if not data:
                return False
            seen += data
            if marker.encode() in seen:
                return True
    return False


read_until("> ")
os.write(fd, b"fl.dig\t")
read_until("fl.digest")
os.write(fd, b".sha2\t")
read_until("sha256(")
os.write(fd, b'"abc")\r')
read_until("ba7816bf")
mark = len(seen)
# Ctrl-D only once readline is reading again (at the next prompt)
end = time.time() + 10
while b"> " not in seen[mark:] and time.time() < end:
    read_until("> ", timeout=0.2)
os.write(fd, b"\x04")
read_until("\x00", timeout=3)
done, status = os.waitpid(pid, os.WNOHANG)
if done == 0:
    os.kill(pid, 9)
    _, status = os.waitpid(pid, 0)
sys.stdout.write(seen.decode(errors="replace"))
sys.exit(0 if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 else 1)
