"""Running a sweep: one `tlbkit-train` subprocess per trial, resumable, interruptible."""

import concurrent.futures
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

from tlbkit.ablate.results import ERROR_FILE, collect, write_results
from tlbkit.run_dir import RunDir, atomic_write_json, locked, read_json
from tlbkit.ablate.sweep import make_trials, train_args

TRIAL_FILE = "trial.json"


def _error_summary(stderr_text, returncode, timed_out, timeout):
    """(one-line message, last lines of stderr) of a failed trial."""
    lines = [l.rstrip() for l in stderr_text.splitlines() if l.strip()]
    tail = lines[-20:]
    useful = [l for l in tail if "error" in l.lower() and "--traceback for details" not in l]
    reason = f"timed out after {timeout:g} s" if timed_out else f"exit status {returncode}"
    line = (useful or lines or [""])[-1].strip()
    return (f"{reason}: {line}" if line else reason), tail


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


class _Children:
    """The trial subprocesses alive now, so that an interrupted sweep can end them."""

    def __init__(self):
        self.lock = threading.Lock()
        self.procs = set()
        self.stopping = threading.Event()

    def add(self, proc):
        with self.lock:
            if self.stopping.is_set():
                proc.kill()
            self.procs.add(proc)

    def discard(self, proc):
        with self.lock:
            self.procs.discard(proc)

    def stop_all(self):
        with self.lock:
            self.stopping.set()
            procs = list(self.procs)
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def trial_status(trial_dir, args):
    """`"ok"`, `"failed"`, `"pending"` or `"stale"` (it holds a run made with other flags)."""
    saved = read_json(os.path.join(trial_dir, TRIAL_FILE))
    started = os.path.exists(RunDir(trial_dir).config_path)
    if started and saved is not None and saved.get("args") != args:
        return "stale"
    if RunDir(trial_dir).is_finished:
        return "ok"
    if os.path.exists(os.path.join(trial_dir, ERROR_FILE)):
        return "failed"
    return "pending"


def run_trial(trial_dir, args, timeout=None, children=None, python=None):
    """Runs `python -m tlbkit.bin.train` for one trial; never raises for a failing trial.

    Args:
        trial_dir: str. The trial's run directory (`--model_dir`).
        args: list of str. Its `tlbkit.bin.train` flags (see `train_args`).
        timeout: float or None. Seconds before the trial is killed.
        children: `_Children` that tracks the subprocess, or None.
        python: str. Interpreter. Defaults to this one.

    Returns:
        `(status, error)`: `("ok", None)`, `("failed", one-line message)` (also
        written to `error.txt` with the last lines of stderr) or, when `children`
        was stopped, `("interrupted", ...)` (nothing written: a rerun resumes it).
    """
    os.makedirs(trial_dir, exist_ok=True)
    error_path = os.path.join(trial_dir, ERROR_FILE)
    if os.path.exists(error_path):
        os.remove(error_path)
    atomic_write_json(os.path.join(trial_dir, TRIAL_FILE), {"args": args})
    cmd = [python or sys.executable, "-m", "tlbkit.bin.train", f"--model_dir={trial_dir}"] + list(args)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    timed_out = False
    with open(os.path.join(trial_dir, "stdout.txt"), "w") as out, open(os.path.join(trial_dir, "stderr.txt"), "w") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
        if children is not None:
            children.add(proc)
        try:
            returncode = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            proc.kill()
            returncode = proc.wait()
        finally:
            if children is not None:
                children.discard(proc)
    if returncode == 0 and RunDir(trial_dir).is_finished:
        return "ok", None
    if children is not None and children.stopping.is_set():
        return "interrupted", "sweep interrupted"  # no error.txt: a rerun resumes it
    with open(os.path.join(trial_dir, "stderr.txt"), errors="replace") as f:
        message, tail = _error_summary(f.read(), returncode, timed_out, timeout)
    with open(error_path, "w") as f:
        f.write(message + "\n\nLast lines of stderr.txt:\n" + "\n".join(tail) + "\n")
    return "failed", message


def run_sweep(sweep, root, parallel=1, timeout=None, extra_flags=(), overwrite_stale=False, command=None, log=print):
    """Runs the trials of a sweep that are not finished, then writes the results.

    Finished trials (`metrics.json`) are skipped, interrupted ones resume,
    failed ones are retried. A trial whose directory was finished with other
    flags (the sweep changed) is reported as failed unless `overwrite_stale`.

    Args:
        sweep: `Sweep`.
        root: str. Sweep directory (`trials/`, `results.*`).
        parallel: int. Trials run at once.
        timeout: float or None. Seconds before a trial is killed.
        extra_flags: list of str. More `tlbkit.bin.train` flags for every trial.
        overwrite_stale: bool. Delete stale trial directories and rerun them.
        command: str or None. The command line, recorded in `results.md`.
        log: callable taking a line of progress.

    Returns:
        list of result rows (dicts), as written to `results.csv`.

    Raises:
        RunDirError: another process is running a sweep on `root` (`tlbkit.run_dir.locked`).
    """
    if parallel < 1:
        raise ValueError(f"`parallel` must be >= 1. Received: parallel={parallel}")
    with locked(root, "--root"):  # a second sweep on this root would rerun and overwrite the same trials
        return _run_sweep(sweep, root, parallel, timeout, extra_flags, overwrite_stale, command, log)


def _run_sweep(sweep, root, parallel, timeout, extra_flags, overwrite_stale, command, log):
    trials = make_trials(sweep)
    os.makedirs(os.path.join(root, "trials"), exist_ok=True)
    atomic_write_json(os.path.join(root, "sweep.json"), {**dataclasses.asdict(sweep), "command": command})
    todo, errors = [], {}
    for trial in trials:
        args = train_args(sweep, trial, extra_flags)
        status = trial_status(os.path.join(root, "trials", trial.trial_id), args)
        if status == "ok":
            log(f"skip {trial.trial_id} (finished)")
        elif status == "stale" and not overwrite_stale:
            errors[trial.trial_id] = ("its directory holds a run with other flags (the sweep changed); "
                                      "use another --root, delete it or pass --overwrite_stale")
            log(f"stale {trial.trial_id}: {errors[trial.trial_id]}")
        else:
            if status == "stale":
                shutil.rmtree(os.path.join(root, "trials", trial.trial_id))
            todo.append((trial, args))
    log(f"{len(trials)} trials: {len(trials) - len(todo) - len(errors)} finished, {len(todo)} to run, "
        f"{parallel} at a time.")
    children = _Children()

    def one(job):
        trial, args = job
        if children.stopping.is_set():
            return trial, "interrupted", "sweep interrupted", 0.0
        start = time.time()
        status, error = run_trial(os.path.join(root, "trials", trial.trial_id), args, timeout, children)
        return trial, status, error, time.time() - start

    done = 0
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if on_main_thread else None
    with concurrent.futures.ThreadPoolExecutor(max_workers=parallel) as pool:
        futures = [pool.submit(one, job) for job in todo]
        try:
            for future in concurrent.futures.as_completed(futures):
                trial, status, error, seconds = future.result()
                done += 1
                if error:
                    errors[trial.trial_id] = error
                value = (RunDir(os.path.join(root, "trials", trial.trial_id)).read_metrics() or {}).get(sweep.metric)
                detail = error if error else f"{sweep.metric}={value}"
                log(f"[{done}/{len(todo)}] {trial.trial_id}: {status} ({detail}) in {seconds:.0f} s")
        except BaseException:  # Ctrl-C, SIGTERM: end the running trials too (they resume on a rerun)
            children.stop_all()
            raise
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
    rows = collect(sweep, root, errors)
    write_results(sweep, root, rows, command)
    return rows
