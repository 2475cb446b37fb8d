"""A warm Python for the self-tests' command-line runs: each run is a real process, forked from an
interpreter that has already imported torch, transformers, matplotlib and pytest's plugins.

Most of a whole-suite run on a tiny checkpoint is Python start-up (about 12 of its 19 s here), and the
self-tests start the suite dozens of times. A forked child is still a process of its own - its own
sys.modules after the fork, environment, working directory, file descriptors, exit code and atexit
handlers - so a run sees nothing another run did, and a test still reads what a user would: the exit
code and the text written to stdout and stderr. What a fork cannot stand for (what Python imports at
start-up, ``-X importtime``, a process killed from outside) keeps a cold ``subprocess`` in its test.

The server side (``python -m tests.selftests.warm``) imports only third-party libraries, never the
suite's own modules, so nothing of the suite is initialised before a run's environment is in place.
It reads one JSON request a line on stdin and answers one JSON line on stdout; it is single-threaded
and forks only after its imports, so no lock is held across the fork.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

#: what a whole-suite run imports anyway: paid once per warm interpreter instead of once per run
PRELOAD = (
    "numpy", "PIL.Image", "torch", "torch.utils.flop_counter", "torch.profiler", "safetensors.torch",
    "transformers", "jsonschema", "matplotlib", "matplotlib.pyplot",
    "pytest", "_pytest.pytester", "pytest_html.plugin", "pytest_metadata.plugin", "pytest_benchmark.plugin",
    "pytest_timeout", "pytest_env.plugin", "xdist.plugin", "xdist.looponfail", "execnet",
)
#: the model classes are imported lazily by transformers; touch them so their modules load here
PRELOAD_ATTRIBUTES = (("transformers", "DINOv3ViTModel"), ("transformers", "DINOv3ConvNextModel"),
                      ("transformers", "AutoConfig"))
#: the suite's own packages: none of their modules reads the environment when imported
PRELOAD_PACKAGES = ("acceptance", "fixtures")


@dataclass(frozen=True)
class Finished:
    """One run: what ``subprocess.run(..., capture_output=True, text=True)`` would have returned."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    duration: float

    def completed(self) -> subprocess.CompletedProcess:
        return subprocess.CompletedProcess(list(self.args), self.returncode, self.stdout, self.stderr)


class WarmPython:
    """The client: one warm server process; ``run`` forks one child per command, one at a time."""

    def __init__(self, scratch: Path, env: Mapping[str, str] | None = None) -> None:
        self.scratch = scratch
        self.scratch.mkdir(parents=True, exist_ok=True)
        self._count = 0
        root = str(Path(__file__).resolve().parents[2])
        environment = dict(os.environ if env is None else env)
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, (root, environment.get("PYTHONPATH"))))
        self._server = subprocess.Popen([sys.executable, "-m", "tests.selftests.warm"], cwd=root, env=environment,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        ready = self._server.stdout.readline()
        if json.loads(ready or "{}").get("ready") is not True:
            raise RuntimeError(f"the warm Python did not start: {ready!r}")

    def run(self, args: Sequence[str], *, cwd: Path | str, env: Mapping[str, str], timeout: float = 600) -> Finished:
        """``python ARGS`` (``-m MODULE ...``, ``-c CODE ...`` or ``SCRIPT ...``) in ``cwd`` with exactly ``env``."""
        self._count += 1
        out, err = (self.scratch / f"run-{self._count}.{name}" for name in ("out", "err"))
        request = {"args": list(args), "cwd": str(cwd), "env": dict(env), "stdout": str(out), "stderr": str(err),
                   "timeout": timeout}
        started = time.perf_counter()
        self._server.stdin.write(json.dumps(request) + "\n")
        answer = json.loads(self._server.stdout.readline() or '{"lost": true}')
        if answer.get("lost"):
            raise RuntimeError("the warm Python went away")
        stdout, stderr = (path.read_text(errors="replace") for path in (out, err))
        if answer.get("timed_out"):
            raise subprocess.TimeoutExpired([sys.executable, *args], timeout, stdout, stderr)
        return Finished(tuple(args), answer["returncode"], stdout, stderr, time.perf_counter() - started)

    def close(self) -> None:
        if self._server.poll() is None:
            self._server.stdin.close()
            try:
                self._server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._server.kill()


# ---- the server: preload, then fork one child per request ----

def _preload() -> frozenset[str]:
    """Import what every run imports; returns the names of the modules now loaded."""
    import importlib
    import pkgutil
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in PRELOAD:
            try:
                importlib.import_module(name)
            except ImportError:  # an optional plugin this environment lacks: the child imports what it has
                pass
        for module, attribute in PRELOAD_ATTRIBUTES:
            getattr(importlib.import_module(module), attribute, None)
        for package in PRELOAD_PACKAGES:
            for found in pkgutil.walk_packages(importlib.import_module(package).__path__, f"{package}."):
                importlib.import_module(found.name)
    return frozenset(sys.modules)


def _not_warning_about(preloaded: frozenset[str]) -> None:
    """pytest warns that a plugin module imported before it started cannot be assertion-rewritten; in a
    fresh process it would have been imported by pytest itself, so the server's preloads are no news."""
    from _pytest.assertion.rewrite import AssertionRewritingHook

    warn = AssertionRewritingHook._warn_already_imported

    def _warn_already_imported(self, name: str) -> None:
        if name not in preloaded:
            warn(self, name)

    AssertionRewritingHook._warn_already_imported = _warn_already_imported


def _child(request: dict, preloaded: frozenset[str]) -> None:
    """Become the requested command, as far as a fork can: never returns."""
    import atexit
    import runpy

    code = 1
    try:
        os.setsid()  # its own process group: a timeout ends it with every process it started
        atexit._clear()  # the server's exit handlers are not this run's
        for fd, path, flags in ((0, os.devnull, os.O_RDONLY), (1, request["stdout"], os.O_WRONLY | os.O_CREAT),
                                (2, request["stderr"], os.O_WRONLY | os.O_CREAT)):
            os.dup2(os.open(path, flags | getattr(os, "O_CLOEXEC", 0), 0o644), fd)
        os.chdir(request["cwd"])
        # sys.path as a fresh interpreter would build it: the command's first entry, then the run's
        # PYTHONPATH, then the rest (the server's own PYTHONPATH entries leave)
        inherited = [entry for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep) if entry]
        os.environ.clear()
        os.environ.update(request["env"])
        wanted = [entry for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep) if entry]
        rest = [entry for entry in sys.path[1:] if entry not in inherited and entry not in wanted]
        args = request["args"]
        first = os.getcwd() if args[0] in ("-m", "-c") else str(Path(args[0]).resolve().parent)
        sys.path[:] = [first, *wanted, *rest]
        _not_warning_about(preloaded)
        if os.environ.get("OMP_NUM_THREADS", "").isdigit():  # read by torch when it started, in the server
            import torch

            torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
        if args[0] == "-m":
            sys.argv = [args[1], *args[2:]]
            runpy.run_module(args[1], run_name="__main__", alter_sys=True)
        elif args[0] == "-c":
            sys.argv = ["-c", *args[2:]]
            exec(compile(args[1], "<string>", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})
        else:
            sys.argv = list(args)
            runpy.run_path(args[0], run_name="__main__")
        code = 0
    except SystemExit as exiting:
        status = exiting.code
        if status is None or isinstance(status, int):
            code = status or 0
        else:
            print(status, file=sys.stderr)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        try:
            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _serve() -> None:
    import gc
    import signal

    preloaded = _preload()
    gc.freeze()  # the preloaded objects leave the collector's view: a child's collections do not walk them
    replies = sys.stdout
    print(json.dumps({"ready": True}), file=replies, flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(request, preloaded)
        timed_out = []

        def stop(signum, frame, pid=pid):
            timed_out.append(True)
            os.killpg(pid, signal.SIGKILL)

        signal.signal(signal.SIGALRM, stop)
        signal.setitimer(signal.ITIMER_REAL, float(request["timeout"]))
        _, status = os.waitpid(pid, 0)
        signal.setitimer(signal.ITIMER_REAL, 0)
        try:  # what the run left behind (xdist workers of a killed run)
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        code = os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status >> 8
        print(json.dumps({"returncode": code, "timed_out": bool(timed_out)}), file=replies, flush=True)


if __name__ == "__main__":
    _serve()
