"""A throwaway ``redis-server`` (the Debian package) for tests, benchmarks and
``tracesieve simulate --processes``: started on loopback on a free port, with
no persistence, and stopped by pid. It can be killed, paused (SIGSTOP) and
started again empty on the same port."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import Any, List, Optional


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


__all__ = ["RedisServer", "free_port"]


class RedisServer:
    """One redis-server process; ``start()`` it, read ``url``, ``stop()`` it."""

    def __init__(self, password: Optional[str] = None, tls: bool = False) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: apt-get install -y redis-server (the README's test command does)")
        self.binary = binary
        self.port = free_port()
        self.password = password
        self.workdir = tempfile.mkdtemp(prefix="tracesieve-redis-")
        self.tls = tls
        if tls:  # a self-signed certificate for 127.0.0.1, made with openssl
            subject = ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
            files = ["-keyout", f"{self.workdir}/key.pem", "-out", f"{self.workdir}/cert.pem"]
            subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", *subject, *files],
                check=True,
                capture_output=True,
            )
        self.process: Optional[subprocess.Popen[bytes]] = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        if self.tls:
            return f"rediss://{auth}127.0.0.1:{self.port}/0?ssl_ca_certs={self.workdir}/cert.pem"
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start (again, empty) on the same port and wait until it answers."""
        args: List[str] = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        args += ["--dir", self.workdir, "--protected-mode", "no", "--loglevel", "warning"]
        if self.tls:
            args[1:3] = ["--port", "0", "--tls-port", str(self.port)]
            args += ["--tls-cert-file", f"{self.workdir}/cert.pem", "--tls-key-file", f"{self.workdir}/key.pem"]
            args += ["--tls-ca-cert-file", f"{self.workdir}/cert.pem", "--tls-auth-clients", "no"]
        # The password goes in on stdin ("-" reads configuration from there): on the
        # command line, any user of the host could read it in /proc until Redis renames itself.
        config = f"requirepass {self.password}\n".encode() if self.password else b""
        args.insert(1, "-")
        # A session of its own: Ctrl-C in the terminal does not stop it under the command using it, which stops it.
        self.process = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        assert self.process.stdin is not None
        self.process.stdin.write(config)
        self.process.stdin.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    if self.tls:
                        return self  # listening; the client's handshake is the test
                    s.sendall(b"PING\r\n")
                    if s.recv(64):
                        return self
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def client(self) -> Any:
        import redis

        return redis.Redis.from_url(self.url)

    def kill(self) -> None:
        """SIGKILL: its data is gone (no persistence)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def pause(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None:
            self.resume()
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
        shutil.rmtree(self.workdir, ignore_errors=True)
