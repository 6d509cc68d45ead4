#!/usr/bin/env python3
"""A TCP proxy that adds latency, as a WAN link would (standard library only).

  delayproxy.py --upstream HOST:PORT --rtt-ms 20 [--port 0]

Every byte is delivered rtt/2 later than it arrived, in each direction, so a
request and its answer take one extra round trip; bytes are not held back
behind each other (a queue per direction, stamped on arrival), so bandwidth
is not limited, only latency added: what `tc qdisc ... netem delay` does on a
link, where netem cannot be used (no sch_netem in a container). Prints one
JSON line {"host", "port"} once listening. As a module: DelayProxy(upstream,
rtt_ms).start() -> host; .stop().
"""
import argparse
import collections
import json
import socket
import threading
import time


class DelayProxy:
    def __init__(self, upstream, rtt_ms, port=0):
        host, p = upstream.rsplit(":", 1)
        self.upstream = (host, int(p))
        self.delay = rtt_ms / 2000.0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(512)
        self.host = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.stopping = False

    def start(self):
        threading.Thread(target=self.accept_loop, daemon=True).start()
        return self.host

    def stop(self):
        self.stopping = True
        self.sock.close()

    def accept_loop(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(self.upstream)
            except OSError:
                c.close()
                continue
            for s in (c, u):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.pipe(c, u)
            self.pipe(u, c)

    def pipe(self, a, b):
        q = collections.deque()
        cv = threading.Condition()

        def reader():
            while True:
                try:
                    data = a.recv(65536)
                except OSError:
                    data = b""
                with cv:
                    q.append((time.monotonic() + self.delay, data))
                    cv.notify()
                if not data:
                    return

        def writer():
            while True:
                with cv:
                    while not q:
                        cv.wait()
                    due, data = q.popleft()
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                if not data:
                    try:
                        b.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    return
                try:
                    b.sendall(data)
                except OSError:
                    a.close()
                    return
        threading.Thread(target=reader, daemon=True).start()
        threading.Thread(target=writer, daemon=True).start()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--rtt-ms", type=float, required=True)
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args()
    p = DelayProxy(a.upstream, a.rtt_ms, a.port)
    print(json.dumps({"host": p.host, "port": int(p.host.rsplit(":", 1)[1])}), flush=True)
    p.start()
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
