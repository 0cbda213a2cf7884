"""harness.py — start and stop real `raftnet` processes on loopback for the cluster tests.

Talks to the nodes through `raftnet --client` (the daemon's debugging client mode, see
docs/operations.md), so no nng binding is needed in Python. Every process started here is remembered by
PID and stopped in stop_all() (SIGKILL as the last resort), which tests call from tearDown/addCleanup.
All waits are bounded.
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

SOURCE_DIR = os.environ.get("TARN_SOURCE_DIR",
                            os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BUILD_DIR = os.environ.get("TARN_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))
RAFTNET = os.environ.get("TARN_RAFTNET", os.path.join(BUILD_DIR, "raftnet"))


def free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


class Cluster:
    def __init__(self, n=3, args=(), token=None, spare=1, scheme="tcp", client_args=()):
        self.dir = tempfile.mkdtemp(prefix="tarn-cluster-")
        self.n = n
        self.args = list(args)
        self.token = token
        ports = free_ports(n + spare)
        self.urls = {i + 1: "%s://127.0.0.1:%d" % (scheme, ports[i]) for i in range(n + spare)}
        self.client_args = list(client_args)
        self.procs = {}
        self.logs = {}

    # ---- processes ----
    def peers(self, ids):
        return ",".join("%d=%s" % (i, self.urls[i]) for i in ids)

    def data_dir(self, i):
        return os.path.join(self.dir, "n%d" % i)

    def log_path(self, i):
        return os.path.join(self.dir, "n%d.log" % i)

    def start(self, i, members=None, extra=()):
        members = members or range(1, self.n + 1)
        cmd = [RAFTNET, "--id", str(i), "--listen", self.urls[i], "--peers", self.peers(members),
               "--data", self.data_dir(i)] + self.args + list(extra)
        if self.token:
            cmd += ["--cluster-token", self.token]
        log = open(self.log_path(i), "ab")
        self.procs[i] = subprocess.Popen(cmd, stdout=log, stderr=log)
        log.close()
        return self.procs[i]

    def start_all(self):
        for i in range(1, self.n + 1):
            self.start(i)

    def kill(self, i, sig=signal.SIGKILL):
        p = self.procs.get(i)
        if p and p.poll() is None:
            p.send_signal(sig)
            if sig in (signal.SIGKILL, signal.SIGTERM):
                p.wait(timeout=10)

    def stop_all(self):
        for i, p in list(self.procs.items()):
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGCONT)
                    p.send_signal(signal.SIGTERM)
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=5)
        self.procs = {}

    def cleanup(self):
        self.stop_all()
        shutil.rmtree(self.dir, ignore_errors=True)

    def make_certs(self):
        """A CA and a server certificate for 127.0.0.1 (openssl CLI). Returns (ca, cert, key) paths."""
        steps = [
            "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2"
            " -keyout ca.key -out ca.pem -subj /CN=tarn-test-ca",
            "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key"
            " -out server.csr -subj /CN=127.0.0.1",
            "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -out server.pem",
        ]
        for st in steps:
            subprocess.run(st, shell=True, cwd=self.dir, check=True, capture_output=True, timeout=30)
        return tuple(os.path.join(self.dir, f) for f in ("ca.pem", "server.pem", "server.key"))

    def sanitizer_reports(self):
        """Sanitizer findings in any node's log (an instrumented build reports there)."""
        found = []
        for name in sorted(os.listdir(self.dir)):
            if name.endswith(".log"):
                with open(os.path.join(self.dir, name), "rb") as f:
                    text = f.read().decode(errors="replace")
                for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                               "WARNING: ThreadSanitizer"):
                    if marker in text:
                        found.append("%s: %s" % (name, marker))
        return found

    def log(self, i):
        try:
            with open(self.log_path(i), "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    # ---- client ----
    def client(self, *cmd, urls=None, timeout_ms=8000, token=None, extra=()):
        urls = urls or ",".join(self.urls[i] for i in sorted(self.procs))
        argv = [RAFTNET, "--client", urls, "--timeout-ms", str(timeout_ms)] + self.client_args + list(extra)
        tok = token if token is not None else self.token
        if tok:
            argv += ["--cluster-token", tok]
        argv += [str(c) for c in cmd]
        r = subprocess.run(argv, capture_output=True, timeout=timeout_ms / 1000 + 10)
        return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")

    def status(self, i, timeout_ms=1000):
        rc, out, _ = self.client("status", urls=self.urls[i], timeout_ms=timeout_ms)
        if rc != 0:
            return None
        first = out.splitlines()[0]
        st = dict(kv.split("=", 1) for kv in first.split())
        st["members"] = [l for l in out.splitlines()[1:] if l.startswith("member ")]
        return st

    def wait_leader(self, timeout=15.0, among=None):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for i in sorted(among or self.procs):
                p = self.procs.get(i)
                if not p or p.poll() is not None:
                    continue
                st = self.status(i)
                if st and st["role"] == "leader":
                    return i
            time.sleep(0.1)
        raise AssertionError("no leader within %.0fs" % timeout)

    def wait_converged(self, ids, timeout=20.0):
        """Waits until every node in ids has applied the same index (>= the leader's commit)."""
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            sts = [self.status(i) for i in ids]
            if all(sts):
                applied = {int(s["applied"]) for s in sts}
                commits = [int(s["commit"]) for s in sts]
                last = sts
                if len(applied) == 1 and min(applied) >= max(commits):
                    return min(applied)
            time.sleep(0.1)
        raise AssertionError("nodes did not converge: %r" % (last,))
