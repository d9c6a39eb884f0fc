"""Command-line binaries: thin absl mains around the library functions.

Binaries are quiet by default: TensorFlow's C++ start-up lines are hidden unless the environment sets
TF_CPP_MIN_LOG_LEVEL itself (to 0, everything; the default here is 2). TensorFlow 2.21 logs some INFO notices
through absl before its logging honours that variable (oneDNN's "custom operations are on", the CPU-feature
notice on AVX-512 hosts); at a level of 1 or more the binaries import TensorFlow with standard error captured
and pass on every other line (`import_tensorflow_quietly`, once the flags are parsed: `--help` and bad flags
never start TensorFlow).
"""

import os
import re
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The start-up notices `import tensorflow` prints whatever TF_CPP_MIN_LOG_LEVEL says; nothing else is dropped.
START_UP_NOTICES = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|oneDNN custom operations are on\. You may see slightly different numerical results"
    r"|This TensorFlow binary is optimized to use available CPU instructions in performance-critical operations"
    r"|To enable the following instructions: .*rebuild TensorFlow with the appropriate compiler flags")


def import_tensorflow_quietly():
    """Imports TensorFlow (if installed and not imported yet) with its start-up notices kept off standard error.

    File descriptor 2 (where the C++ library writes, whatever Python's `sys.stderr` is) goes to a temporary
    file for the import; afterwards every captured line that is not one of `START_UP_NOTICES` is written back
    to it, so warnings and errors of the import still show. Does nothing when TF_CPP_MIN_LOG_LEVEL is 0 (INFO
    lines wanted: the user sees what TensorFlow prints) or when the process has no file descriptor 2.
    """
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0").strip() in ("", "0") or "tensorflow" in sys.modules:
        return
    fd = 2
    try:
        os.fstat(fd)
    except OSError:
        return
    import importlib
    import tempfile

    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), fd)
        try:
            importlib.import_module("tensorflow")
        except ImportError:
            pass  # a JAX-only machine: the binaries that need TensorFlow say so where they use it
        finally:
            sys.stderr.flush()
            os.dup2(saved, fd)
            os.close(saved)
        captured.seek(0)
        lines = captured.read().decode(errors="replace").splitlines()
    kept = [line for line in lines if not START_UP_NOTICES.search(line)]
    if kept:
        os.write(fd, ("\n".join(kept) + "\n").encode())
