"""A real local Ray cluster (``ray start --head`` on 127.0.0.1, its own ports), for tests."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.chroma_server import free_port

#: the environment of the cluster and of its drivers: every Ray address on 127.0.0.1 (Ray otherwise swaps
#: a loopback address for the machine's network one), no token (a loopback-only test cluster), no usage stats
LOOPBACK_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_AUTH_MODE": "disabled",
    "RAY_USAGE_STATS_ENABLED": "0",
}


def _ray_exe() -> str:
    exe = Path(sys.executable).with_name("ray")
    return str(exe) if exe.exists() else "ray"


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def ray_cluster(num_cpus: int = 2) -> Iterator[str]:
    """Run a one-node Ray cluster on loopback until the block ends; yields its address ``127.0.0.1:PORT``.

    ``ray start --head --block`` runs in its own process group: stopping it stops every process of this
    cluster (and nothing of any other Ray instance on the machine).
    """
    port = free_port()
    temp = Path(tempfile.mkdtemp(prefix="rt-", dir="/tmp"))  # short: Ray's unix sockets live under it
    cmd = [
        _ray_exe(), "start", "--head", "--block", "--node-ip-address", "127.0.0.1", "--port", str(port),
        "--num-cpus", str(num_cpus), "--include-dashboard", "false", "--disable-usage-stats",
        "--temp-dir", str(temp),
    ]  # fmt: skip
    env = {**os.environ, **LOOPBACK_ENV}
    log = (temp / "start.log").open("wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.time() + 90
        while not _listening(port):
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"ray did not start: {(temp / 'start.log').read_text()}")
            time.sleep(0.3)
        yield f"127.0.0.1:{port}"
    finally:
        for sig, wait in ((signal.SIGINT, 15), (signal.SIGKILL, 30)):
            try:
                os.killpg(proc.pid, sig)
                proc.wait(wait)
                break
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue
        log.close()
        _reap(temp)
        shutil.rmtree(temp, ignore_errors=True)


def _reap(temp: Path) -> None:
    """Kill what is left of this cluster's processes (any process whose command line names its temp dir)."""
    mine = str(temp)
    for pid_dir in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (pid_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if mine in cmdline:
            try:
                os.kill(int(pid_dir.name), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def worker_pids(temp_hint: str = "ray::") -> list[int]:
    """PIDs of Ray worker processes currently running a task of a map stage."""
    out = []
    for pid_dir in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (pid_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cmdline.startswith(temp_hint) and "IDLE" not in cmdline:
            out.append(int(pid_dir.name))
    return out
