"""Flags, gin parsing, device set-up and error reporting shared by the binaries."""

import os
import re
import sys
import traceback

from absl import flags

# === Flags shared by every binary ===
flags.DEFINE_string("model_dir", None, "Run directory: everything a run produces goes here.")
flags.DEFINE_multi_string("gin_file", [], "Gin files, parsed in order (later files win).")
flags.DEFINE_multi_string("gin_param", [], "Gin bindings, e.g. 'train.epochs = 3' (after the files).")
flags.DEFINE_multi_string("gin_search_path", [], "Extra folders to search for --gin_file and include paths.")
flags.DEFINE_multi_string("plugin", [], "Python module to import before gin parsing (registers plugins).")
flags.DEFINE_enum("strategy", "auto", ["auto", "one_device", "mirrored", "multi_worker", "tpu"], "tf.distribute strategy.")
flags.DEFINE_enum("precision", "auto", ["auto", "float32", "mixed_float16", "mixed_bfloat16"],
                  "Keras dtype policy; auto = mixed_float16 on a GPU, float32 otherwise.")
flags.DEFINE_integer("seed", None, "Random seed (overrides train.seed).")
flags.DEFINE_boolean("list", False, "Print every registered plugin with its parameters and defaults, then exit.")
flags.DEFINE_boolean("traceback", False, "Show the full Python traceback on errors.")
flags.DEFINE_integer("cpu_devices", 0, "Split the CPU into this many logical devices (to try mirrored on a CPU).")

FLAGS = flags.FLAGS
REPO_GIN = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "gin")


class UsageError(Exception):
    """A user error: reported in one or two lines, exit status 2."""


def list_plugins():
    from tlbkit import registry

    lines = []
    for kind, reg in registry.ALL.items():
        lines.append(f"{kind}:")
        for name in reg.names():
            params = ", ".join(f"{p}={d!r}" if d != "REQUIRED" else f"{p}=REQUIRED" for p, d in reg.describe(name))
            lines.append(f"  {kind}.{name}({params})")
    return "\n".join(lines)


def gin_search_paths():
    paths = list(FLAGS.gin_search_path) + [os.getcwd(), REPO_GIN]
    return [p for p in paths if os.path.isdir(p)]


def parse_gin(files, params, skip_unknown=False):
    """Parses gin files and bindings with clear errors. Returns the parsed config text."""
    import gin

    for path in gin_search_paths():
        gin.add_config_file_search_path(path)
    for f in files:
        if not any(os.path.isfile(os.path.join(p, f)) for p in [""] + gin_search_paths()):
            raise UsageError(f"gin file {f!r} not found (searched: ., {', '.join(gin_search_paths())}).")
    import logging

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.CRITICAL)  # gin logs every search-path miss as an error
    try:
        gin.parse_config_files_and_bindings(files, params, skip_unknown=skip_unknown)
    except (ValueError, SyntaxError, KeyError, ImportError, IOError) as e:
        raise UsageError("gin config error: " + explain_gin_error(str(e))) from e
    finally:
        root.setLevel(level)
    return gin.config_str()


def explain_gin_error(message):
    """Adds the registered names to gin's 'No configurable matching' errors."""
    from tlbkit import registry

    first = message.strip().splitlines()[0] if message.strip() else message
    match = re.search(r"No configurable matching (?:reference )?'@?([\w./]+?)(?:\(\))?'", message)
    if match:
        name = match.group(1)
        kind = name.split(".")[0]
        if kind in registry.ALL:
            names = ", ".join(f"{kind}.{n}" for n in registry.ALL[kind].names())
            return f"unknown {kind[:-1]} '{name}'. Registered {kind}: {names}."
        return f"unknown configurable '{name}'. Run with --list to see the registered names."
    return first + ("" if first == message.strip() else " (" + " ".join(message.strip().splitlines()[1:3]) + ")")


def setup_devices():
    """Logical CPU devices, precision policy. Must run before TensorFlow makes a tensor."""
    import keras

    if FLAGS.traceback:
        keras.config.disable_traceback_filtering()
    if FLAGS.cpu_devices:
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * FLAGS.cpu_devices)
    policy = FLAGS.precision
    if policy == "auto":
        policy = "mixed_float16" if has_gpu() else "float32"
    keras.mixed_precision.set_global_policy(policy)
    return policy


def has_gpu():
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    if keras.backend.backend() == "jax":
        import jax

        return any(d.platform == "gpu" for d in jax.devices())
    return False


def make_strategy(name):
    """(strategy or None, is_chief)."""
    import tensorflow as tf

    if name == "auto":
        gpus = tf.config.list_logical_devices("GPU")
        name = "mirrored" if len(gpus) > 1 else "one_device"
    if name == "one_device":
        return None, True
    if name == "mirrored":
        devices = [d.name for d in tf.config.list_logical_devices("GPU")] or [
            d.name for d in tf.config.list_logical_devices("CPU")
        ]
        return tf.distribute.MirroredStrategy(devices), True
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise UsageError("--strategy=multi_worker needs the TF_CONFIG environment variable (cluster and task).")
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        resolver = strategy.cluster_resolver
        is_chief = resolver.task_type in (None, "chief") or (
            resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in resolver.cluster_spec().as_dict()
        )
        return strategy, is_chief
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver), True
    raise UsageError(f"unknown strategy {name!r}")


def load_plugins():
    from tlbkit import plugins

    try:
        plugins.load_all(FLAGS.plugin)
    except plugins.PluginError as e:
        raise UsageError(str(e)) from e


def program_name():
    """`tlbkit-train` etc., also when run as `python -m tlbkit.bin.train`."""
    name = os.path.basename(sys.argv[0])
    if name.endswith(".py"):
        name = "tlbkit-" + {"evaluate": "eval"}.get(name[:-3], name[:-3])
    return name


def error_summary(error):
    """The line of an exception that says what is wrong (unwrapping Keras' call-context wrapper)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip()
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    if lines and lines[0].startswith("Exception encountered when calling") and len(lines) > 1:
        lines = lines[1:]
    return lines[0] if lines else type(error).__name__


def run_main(main_fn, argv):
    """Runs `main_fn(argv)`; user errors become one or two lines and exit status 2."""
    from tlbkit import registry
    from tlbkit import pipeline

    known = (UsageError, registry.UnknownNameError, pipeline.EmptyDatasetError, ValueError, TypeError,
             FileNotFoundError, PermissionError, RuntimeError)
    try:
        main_fn(argv)
    except known as e:
        if FLAGS.traceback:
            traceback.print_exc()
        name = program_name()
        message = error_summary(e)
        print(f"{name}: error: {message}", file=sys.stderr)
        if not FLAGS.traceback:
            print(f"{name}: (run with --traceback for details)", file=sys.stderr)
        sys.exit(2)


def shell_quote(arg):
    import shlex

    return shlex.quote(arg)


def config_header():
    """`import` lines for --plugin modules, so a saved config parses on its own."""
    return "".join(f"import {m}\n" for m in FLAGS.plugin) + ("\n" if FLAGS.plugin else "")


def write_config_summary(model_dir, text):
    """The operative config as a TensorBoard text summary."""
    import tensorflow as tf

    writer = tf.summary.create_file_writer(os.path.join(model_dir, "tensorboard", "config"))
    with writer.as_default():
        tf.summary.text("operative_config", "    " + text.replace("\n", "\n    "), step=0)
    writer.flush()
