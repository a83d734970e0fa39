"""Run Fieldops under gunicorn in a child process (crash tests, benchmarks, the fleet simulator)."""
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rss_kb(pid: int, field: str) -> int:
    """VmRSS or VmHWM of a process, in kB (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


class ServerProcess:
    """gunicorn serving server.wsgi:app on 127.0.0.1 with the given database."""

    def __init__(self, database_url: str, *, workers: int = 2, attachments_dir: str | None = None,
                 port: int | None = None, log_path: str | None = None, threads: int = 1,
                 env: dict | None = None):
        """Configure (env: extra FIELDOPS_* variables, e.g. an object store); start() runs it."""
        self.database_url, self.workers, self.threads = database_url, workers, threads
        self.extra_env = dict(env or {})
        self.attachments_dir = attachments_dir
        self.port = port or free_port()
        self.log_path = log_path or os.devnull
        self.proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        """The API root."""
        return f"http://127.0.0.1:{self.port}/api/v1"

    def start(self, timeout: float = 90.0) -> "ServerProcess":
        """Start gunicorn and wait until /readyz answers 200.

        90 s: four workers importing the app take ~5 s on a quiet 2-core machine and several times that on a
        loaded one (a slow start is not what the callers test; a server that never answers still fails).
        """
        env = dict(os.environ, FIELDOPS_DATABASE_URL=self.database_url,
                   FIELDOPS_LOG_LEVEL=os.environ.get("FIELDOPS_LOG_LEVEL", "WARNING"), **self.extra_env)
        if self.attachments_dir:
            env["FIELDOPS_ATTACHMENTS_DIR"] = self.attachments_dir
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the handle
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "--workers", str(self.workers), "--threads", str(self.threads),
                 "--bind", f"127.0.0.1:{self.port}", "--graceful-timeout", "5", "--timeout", "120",
                 "--config", "python:server.gunicorn_conf", "server.wsgi:app"],
                env=env, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"gunicorn did not become ready in {timeout:g} s; the end of its log "
                           f"({self.log_path}):\n{self._log_tail()}")

    def _log_tail(self, size: int = 2000) -> str:
        """The last bytes gunicorn wrote (why it did not start), or a note that there are none."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(0, os.SEEK_END)
                log.seek(max(0, log.tell() - size))
                return log.read().decode("utf-8", "replace") or "(empty)"
        except OSError as exc:
            return f"(unreadable: {exc})"

    def worker_pids(self) -> list[int]:
        """The gunicorn workers' pids."""
        if self.proc is None:
            return []
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.proc.pid)],
                             capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    def peak_rss_kb(self) -> int:
        """The largest peak resident set size (VmHWM) among the workers, in kB."""
        return max((_rss_kb(pid, "VmHWM") for pid in self.worker_pids()), default=0)

    def group_pids(self) -> list[int]:
        """Every process in gunicorn's process group: the master and its workers."""
        if self.proc is None:
            return []
        pids = []
        for entry in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rpartition(")")[2].split()  # the command name may hold spaces
            except (FileNotFoundError, NotADirectoryError, ProcessLookupError):
                continue
            if int(fields[2]) == self.proc.pid:  # after the name: state, ppid, pgrp
                pids.append(int(entry))
        return pids

    def group_rss_kb(self) -> int:
        """The resident set size summed over the process group (master and workers), in kB."""
        return sum(_rss_kb(pid, "VmRSS") for pid in self.group_pids())

    def kill(self) -> None:
        """SIGKILL the whole process group: master and workers die at once, mid-request."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        """Graceful stop."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
