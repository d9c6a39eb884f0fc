"""Helpers to run the binaries in subprocesses (as a user would)."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JAX_ENV = {"KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}  # what a test sets to run a binary under JAX

TINY = [
    "LENGTH = 16",
    "CHUNK_SIZE = 4",
    "DIM = 16",
    "NUM_LAYERS = 1",  # one layer (it cross-attends, r = 1): half the graph a second layer traces
    "NUM_CLASSES = 4",
    "VOCAB = 12",
    "datasets.long_range_recall.num_train = 256",
    "datasets.long_range_recall.num_validation = 64",
    "datasets.long_range_recall.num_test = 64",
    "train.batch_size = 32",
]


def binary_env(extra=None):
    """The environment a binary runs with: this process's, the checkout on PYTHONPATH, then `extra`."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    env.update(extra or {})
    return env


def run_binary(module, *args, env=None, timeout=600, check=False, stdin=None, fresh=False):
    """Runs `python -m tlbkit.bin.<module> args...` (with `stdin` as its standard input); returns CompletedProcess.

    By default the binary runs in a process forked from a warm one that has already imported TensorFlow,
    Keras and the plugins (`WarmProcess`): the same code from `run()` on, with its own argv, environment,
    working folder, standard streams, exit status and process group, without paying the import again
    (about 3.5 s a call on an idle 2-core machine). `fresh=True`, an environment that changes more than
    tlbkit's own variables (`KERAS_BACKEND`, a plugin's PYTHONPATH, ...), or TLBKIT_TEST_FRESH_PROCESSES=1
    starts a new interpreter instead. A binary under JAX (`KERAS_BACKEND=jax`, `JAX_PLATFORMS`) forks from a
    second warm process that imported Keras under JAX and has initialised no XLA backend."""
    full_env = binary_env(env)
    warm = not fresh and os.environ.get("TLBKIT_TEST_FRESH_PROCESSES") != "1" and WarmProcess.can_run(env)
    if warm:
        proc = WarmProcess.get(WarmProcess.backend_of(env)).run(module, list(args), full_env, timeout, stdin)
    else:
        proc = subprocess.run(
            [sys.executable, "-m", f"tlbkit.bin.{module}", *args],
            capture_output=True, text=True, timeout=timeout, env=full_env, cwd=ROOT, input=stdin,
        )
    if check and proc.returncode != 0:
        raise AssertionError(f"{module} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


# The warm process: imports what every binary imports, then forks one child per command. At that point it
# has one Python thread and has run no TensorFlow op or JAX computation (no runtime, no thread pools, no XLA
# client), so forking is safe; it checks that before serving.
WARM_SCRIPT = r"""
import json, os, sys, threading
import tlbkit.bin  # the binaries' environment defaults, set before TensorFlow loads
import keras  # TensorFlow (or JAX) with it
import tlbkit.bin.cli
import tlbkit.plugins
tlbkit.plugins.load_all()  # every binary loads them first; again in the child, then at no cost
if threading.active_count() != 1:
    sys.exit(f"not safe to fork: {threading.active_count()} threads after the imports")
if keras.backend.backend() == "jax":
    from jax._src import xla_bridge
    if xla_bridge._backends:
        sys.exit(f"not safe to fork: the imports initialised XLA backends {list(xla_bridge._backends)}")
requests = os.fdopen(int(sys.argv[1]), "r")
replies = os.fdopen(int(sys.argv[2]), "w", buffering=1)
for line in requests:
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:  # the command: leaves through SystemExit, as `python -m tlbkit.bin.<module>` does
        requests.close()
        replies.close()
        os.setpgid(0, 0)  # its own group, so a timeout ends it with the processes it started
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        for fd, (path, flags) in enumerate([(request["stdin"], os.O_RDONLY),
                                            (request["stdout"], os.O_WRONLY | os.O_TRUNC),
                                            (request["stderr"], os.O_WRONLY | os.O_TRUNC)]):
            os.dup2(os.open(path, flags), fd)
        sys.stdin = open(0, "r", closefd=False)
        sys.stdout = open(1, "w", buffering=1, closefd=False)
        sys.stderr = open(2, "w", buffering=1, closefd=False)
        import importlib
        binary = importlib.import_module("tlbkit.bin." + request["module"])
        sys.argv = [binary.__file__] + request["args"]
        binary.run()
        sys.exit(0)
    try:
        os.setpgid(pid, pid)  # here too, so the group exists before the test may need to end it
    except OSError:
        pass
    replies.write(json.dumps({"pid": pid}) + "\n")
    _, status = os.waitpid(pid, 0)
    replies.write(json.dumps({"status": os.waitstatus_to_exitcode(status)}) + "\n")
"""


class WarmProcess:
    """One warm process per Keras backend and test process (see `run_binary`), started at its first use."""

    _instances = {}
    # Variables a test may set for a binary that only its code reads (not Python's or TensorFlow's start-up).
    RUNTIME_VARIABLES = {"TLBKIT_DATA_DIR", "TLBKIT_CACHE", "TLBKIT_JAX_CACHE", "TF_CPP_MIN_LOG_LEVEL",
                         "PYTHONUNBUFFERED"}
    # The start-up each backend's warm process is made with.
    BACKENDS = {"tensorflow": {}, "jax": JAX_ENV}

    @classmethod
    def backend_of(cls, env):
        return (env or {}).get("KERAS_BACKEND", os.environ.get("KERAS_BACKEND", "tensorflow"))

    @classmethod
    def can_run(cls, env):
        backend = cls.backend_of(env)
        start_up = {k: v for k, v in (env or {}).items()
                    if k not in cls.RUNTIME_VARIABLES and (k, v) != ("KERAS_BACKEND", "tensorflow")}
        return backend in cls.BACKENDS and start_up == cls.BACKENDS[backend]

    @classmethod
    def get(cls, backend="tensorflow"):
        instance = cls._instances.get(backend)
        if instance is None or instance.proc.poll() is not None:
            instance = cls._instances[backend] = cls(backend)
        return instance

    def __init__(self, backend="tensorflow"):
        import atexit
        import tempfile

        self.folder = tempfile.mkdtemp(prefix="tlbkit-warm-")
        request_read, self.requests = os.pipe()
        self.replies, reply_write = os.pipe()
        self.proc = subprocess.Popen([sys.executable, "-c", WARM_SCRIPT, str(request_read), str(reply_write)],
                                     pass_fds=(request_read, reply_write), env=binary_env(self.BACKENDS[backend]),
                                     cwd=ROOT,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(request_read)
        os.close(reply_write)
        self.reply_lines = os.fdopen(self.replies, "r")
        atexit.register(self.close)

    def close(self):
        import shutil

        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _reply(self, deadline):
        import json
        import select
        import time

        ready, _, _ = select.select([self.replies], [], [], max(0.0, deadline - time.time()))
        if not ready:
            return None
        line = self.reply_lines.readline()
        if not line:
            raise RuntimeError(f"the warm test process died (status {self.proc.poll()})")
        return json.loads(line)

    def run(self, module, args, env, timeout, stdin):
        import json
        import signal
        import time

        paths = {name: os.path.join(self.folder, name) for name in ("stdin", "stdout", "stderr")}
        with open(paths["stdin"], "w") as f:
            f.write(stdin or "")
        for name in ("stdout", "stderr"):
            open(paths[name], "w").close()
        request = {"module": module, "args": args, "env": env, "cwd": ROOT, **paths}
        os.write(self.requests, (json.dumps(request) + "\n").encode())
        deadline = time.time() + timeout
        pid = self._reply(deadline + 60)["pid"]
        reply = self._reply(deadline)
        if reply is None:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._reply(time.time() + 60)
            raise subprocess.TimeoutExpired([f"tlbkit.bin.{module}", *args], timeout, *self._outputs(paths))
        return subprocess.CompletedProcess([sys.executable, "-m", f"tlbkit.bin.{module}", *args], reply["status"],
                                           *self._outputs(paths))

    @staticmethod
    def _outputs(paths):
        """(stdout, stderr) the child wrote."""
        out = []
        for name in ("stdout", "stderr"):
            with open(paths[name]) as f:
                out.append(f.read())
        return out


def tiny_params(*extra):
    out = []
    for p in TINY + list(extra):
        out.append(f"--gin_param={p}")
    return out


def assert_eval_reproduces_metrics(model_dir, env=None):
    """Reloads the run's last model through tlbkit-eval: the validation numbers of metrics.json come back
    (to 1e-5), so every weight was restored and evaluation has one path."""
    import json

    proc = run_binary("evaluate", f"--model_dir={model_dir}", "--split=validation", "--checkpoint=last", env=env,
                      check=True)
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    recorded = json.load(open(os.path.join(model_dir, "metrics.json")))
    assert got["examples"] == recorded["val_examples"]
    assert abs(got["accuracy"] - recorded["val_accuracy"]) <= 1e-5, (got, recorded)
    assert abs(got["cross_entropy"] - recorded["val_cross_entropy"]) <= 1e-5 * max(1.0, recorded["val_cross_entropy"])
    return got


# === Runs shared by the whole test session ===
# A finished run that tests only read (export, predict, evaluate, --init_from, viz): trained once per session,
# by whichever pytest worker asks first, behind a file lock the other worker waits on.
SHARED_RECALL = ("recall", ["--gin_file=recall_cpu.gin", *tiny_params("train.epochs = 1", "train.steps_per_epoch = 2")])


def session_root(tmp_path_factory):
    """A folder of this pytest session that every xdist worker sees (each worker's own base is one below it)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def shared_run(tmp_path_factory, name, args):
    """The run `tlbkit-train <args> --model_dir=<root>/<name> --data_dir=<root>`, trained once per session.

    Returns:
        pathlib.Path: the finished run's folder. Tests must not change it.
    """
    import fcntl
    import shutil

    root = session_root(tmp_path_factory) / "shared-runs"
    root.mkdir(exist_ok=True)
    run = root / name
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not (run / "metrics.json").exists():  # not trained yet, or a failed attempt: train it here
            shutil.rmtree(run, ignore_errors=True)
            run_binary("train", *args, f"--model_dir={run}", f"--data_dir={root}", check=True)
    return run
