"""What every tlbkit binary shares: its flags in groups, `--help`, and one-line errors with exit status 2.

Each binary defines only the flags it honours (`define_*_flags`, called from its `run()`), so
`tlbkit-eval --seed=1` is an unknown flag rather than a silently ignored one. Errors a user can fix
(bad flags, unknown plugin names, missing files, bad hyper-parameters) print one line naming the problem
and the fix and exit with status 2; `--traceback` shows the full traceback.
"""

import os
import re
import shlex
import sys
import textwrap
import traceback

from absl import app, flags

from tlbkit.bin import import_tensorflow_quietly

FLAGS = flags.FLAGS
GROUPS = {}  # group title -> flag names, in the order the binary defined them


class UsageError(Exception):
    """A user error: reported in one or two lines, exit status 2."""


def define_flag(group, define, name, default, *args, **kwargs):
    """Defines a flag with `define(name, default, *args, **kwargs)` (once per process) and lists it under
    `group` in --help."""
    if name not in FLAGS:
        define(name, default, *args, **kwargs)
    GROUPS.setdefault(group, [])
    if name not in GROUPS[group]:
        GROUPS[group].append(name)


# === Flag groups ===
def define_model_dir_flag(help_text="Run directory: everything a run produces goes here."):
    define_flag("Run", flags.DEFINE_string, "model_dir", None, help_text)


def define_gin_flags(files=True, params_help="Gin binding, e.g. 'train.epochs = 3' (applied after the files)."):
    if files:
        define_flag("Config", flags.DEFINE_multi_string, "gin_file", [],
                "Gin file, by path or by name of a shipped config (e.g. cifar10_cpu.gin); repeatable, later files win.")
    define_flag("Config", flags.DEFINE_multi_string, "gin_param", [], params_help + " Repeatable.")
    define_flag("Config", flags.DEFINE_multi_string, "gin_search_path", [],
            "Extra folder to search for gin files and includes; repeatable.")
    define_flag("Config", flags.DEFINE_multi_string, "plugin", [],
            "Python module to import before gin parsing (registers plugins); repeatable.")


def define_data_flags():
    define_flag("Data", flags.DEFINE_string, "data_dir", None,
            "Folder that dataset bindings name files in (e.g. the zip of cifar10_cpu.gin), also TFDS's data_dir. "
            "Default: $TLBKIT_DATA_DIR, else the current directory.")


def define_device_flags(strategy=True):
    from tlbkit import devices

    define_flag("Devices", flags.DEFINE_enum, "precision", "auto", devices.PRECISIONS,
            "Keras dtype policy; auto = mixed_float16 on a GPU, float32 otherwise.")
    if strategy:
        define_flag("Devices", flags.DEFINE_enum, "strategy", "auto", devices.STRATEGIES,
                "tf.distribute strategy; auto = mirrored on several GPUs, else one device.")
        define_flag("Devices", flags.DEFINE_integer, "cpu_devices", 0,
                "Split the CPU into this many logical devices (to try --strategy=mirrored on a CPU).")


def define_trained_run_flags():
    """--model_dir or --preset, and --checkpoint: the trained model a binary uses."""
    define_flag("Model", flags.DEFINE_string, "model_dir", None, "A run directory written by tlbkit-train.")
    define_flag("Model", flags.DEFINE_string, "preset", None,
                "An installed preset by name or source:name (see --list_presets) or an exported run's folder; instead "
                "of --model_dir.")
    define_flag("Model", flags.DEFINE_enum, "checkpoint", None, ["last", "best"],
                "Which model of the run: last (end of training, as metrics.json reports it) or best (best "
                "validation accuracy). Default: last, or the one model an exported run (a preset) holds.")
    define_flag("Model", flags.DEFINE_boolean, "list_presets", False, "Print the available presets, then exit.")


def check_trained_run_flags():
    """The checks of --model_dir / --preset that need no plugin, Keras or TensorFlow: the binaries run them
    first, so a mistyped folder is reported at once, not after TensorFlow's start-up (several seconds)."""
    if "list_presets" in FLAGS and FLAGS.list_presets:
        return
    if bool(FLAGS.model_dir) == bool(FLAGS.preset):
        raise UsageError("give exactly one of --model_dir (a run directory) and --preset (a preset name or folder).")
    if FLAGS.model_dir:
        run_config(FLAGS.model_dir)


def trained_run_dir():
    """The folder of the trained model that --model_dir or --preset names (its config parsed)."""
    from tlbkit import presets

    check_trained_run_flags()
    folder = presets.resolve(FLAGS.preset) if FLAGS.preset else FLAGS.model_dir
    parse_run_config(folder, FLAGS.gin_param)
    return folder


def checkpoint_of(folder):
    """The checkpoint to use: --checkpoint when given, else the one model of an exported run, else `last`."""
    from tlbkit import run_dir

    if FLAGS.checkpoint:
        return FLAGS.checkpoint
    exported = run_dir.RunDir(folder).read_export()
    return exported.get("checkpoint", "last") if exported else "last"


def check_output_folder(path, flag="--output"):
    """Raises a UsageError before any work when the folder `path` would be written into does not exist."""
    folder = os.path.dirname(os.path.abspath(os.path.expanduser(path)))
    if not os.path.isdir(folder):
        raise UsageError(f"{flag}={path}: the folder {folder} does not exist; create it or choose another {flag}.")


def define_output_flags():
    define_flag("Output", flags.DEFINE_boolean, "traceback", False, "Show the full Python traceback on errors.")


# === Shared steps ===
def load_plugins():
    """Imports the built-in plugins, installed ones and `--plugin` modules."""
    from tlbkit import plugins

    try:
        plugins.load_all(FLAGS.plugin if "plugin" in FLAGS else ())
    except plugins.PluginError as e:
        raise UsageError(str(e)) from e


def apply_data_dir():
    from tlbkit import data

    if "data_dir" in FLAGS and FLAGS.data_dir:
        if not os.path.isdir(os.path.expanduser(FLAGS.data_dir)):
            raise UsageError(f"--data_dir={FLAGS.data_dir!r} is not a folder.")
        data.set_data_dir(FLAGS.data_dir)


def setup_devices(strategy=False):
    """Precision policy (and logical CPUs); with `strategy`, returns `(strategy, is_chief)`."""
    import keras

    from tlbkit import devices

    if FLAGS.traceback:
        keras.config.disable_traceback_filtering()
    devices.setup(FLAGS.precision, FLAGS.cpu_devices if "cpu_devices" in FLAGS else 0)
    return devices.make_strategy(FLAGS.strategy) if strategy else None


def no_arguments(argv):
    if len(argv) > 1:
        raise UsageError(f"unexpected arguments: {' '.join(argv[1:])}")


def command_line():
    """The command line as one shell-quoted string."""
    return " ".join(map(shlex.quote, [program_name()] + sys.argv[1:]))


def program_name():
    """`tlbkit-train` etc., also when run as `python -m tlbkit.bin.train`."""
    name = os.path.basename(sys.argv[0])
    if name.endswith(".py"):
        name = "tlbkit-" + {"evaluate": "eval"}.get(name[:-3], name[:-3])
    return name


def parse_gin(files, params, skip_unknown=False):
    """Parses gin files and bindings with the --gin_search_path folders; returns the config text."""
    from tlbkit import gin_utils

    return gin_utils.parse(files, params, FLAGS.gin_search_path if "gin_search_path" in FLAGS else (),
                           skip_unknown=skip_unknown)


def config_header():
    """`import` lines for --plugin modules, so that a saved config parses on its own."""
    modules = FLAGS.plugin if "plugin" in FLAGS else []
    return "".join(f"import {m}\n" for m in modules) + ("\n" if modules else "")


def parse_run_config(model_dir, extra_params=()):
    """Parses a run's own `config.gin` (plus overrides), for the binaries that use a trained run."""
    return parse_gin([run_config(model_dir)], list(extra_params))


def run_config(model_dir):
    """The path of a run's `config.gin`; a UsageError naming the folder when there is none."""
    from tlbkit import run_dir

    path = run_dir.RunDir(model_dir).config_path
    if not os.path.exists(path):
        raise UsageError(f"{path} not found: is {model_dir!r} a tlbkit-train run directory?")
    return path


def write_operative_config(model_dir):
    """`operative_config.gin` (every parameter used, defaults included), also as a TensorBoard text."""
    import gin
    import tensorflow as tf

    from tlbkit import run_dir

    run = run_dir.RunDir(model_dir)
    text = gin.operative_config_str()
    run.write_operative_config(text)
    writer = tf.summary.create_file_writer(run.tensorboard_config_dir)
    with writer.as_default():
        tf.summary.text("operative_config", "    " + text.replace("\n", "\n    "), step=0)
    writer.flush()


def list_configs_and_plugins(search_paths=None):
    """The shipped and plugins' configs with their sources, then `train` and every registered plugin: a line with
    its parameters and defaults, then a line per parameter saying what it means (from its docstring).

    Args:
        search_paths: list of str. Extra config folders. Defaults to `--gin_search_path`.
    """
    from tlbkit import gin_utils, registry
    from tlbkit import train as train_lib

    lines = ["configs (by name, e.g. --gin_file=recall_cpu.gin; each with its source):"]
    extra = search_paths if search_paths is not None else FLAGS.gin_search_path if "gin_search_path" in FLAGS else ()
    for name, found in gin_utils.configs_with_sources(extra=extra).items():
        if len(found) == 1:
            lines.append(f"  {name}  ({found[0]})")
        else:  # given by several sources: only a qualified name selects one
            lines += [f"  {gin_utils.qualified(source, name)}  ({source}; {name} alone is ambiguous)" for source in found]
    lines.append("train (what tlbkit-train runs; bind as train.NAME):")
    lines += describe_configurable("train", registry.parameters(train_lib.train, skip=train_lib.CALLER_ARGUMENTS))
    for kind, reg in registry.ALL.items():
        lines.append(f"{kind}:")
        for name in reg.names():
            lines += describe_configurable(f"{kind}.{name}", reg.describe(name))
    return "\n".join(lines)


def describe_configurable(name, parameters):
    """`name(p=default, ...)`, then `p: meaning` for each of `parameters` (`registry.parameters`'s rows)."""
    signature = ", ".join(f"{p}={d!r}" if d != "REQUIRED" else f"{p}=REQUIRED" for p, d, _ in parameters)
    return [f"  {name}({signature})"] + [f"      {p}: {meaning or '(undocumented)'}" for p, _, meaning in parameters]


def list_presets():
    """One line per available preset: name, source, then the first line of its model card. A name that several
    sources ship is listed qualified (`tlbkit:cifar10_tlb`), as `--preset` needs it."""
    from tlbkit import presets

    rows = presets.available()
    if not rows:
        return "no presets installed"
    width = max(len(name) for name in rows)
    source_width = max(len(source) for source, _ in rows.values()) + 2
    lines = [f"{name.ljust(width)}  {f'({source})'.ljust(source_width)}  {summary}".rstrip()
             for name, (source, summary) in rows.items()]
    if any(":" in name for name in rows):
        lines.append("(source:name: a name that several sources ship; only the qualified name selects one)")
    return "\n".join(lines)


# === Help, flag parsing, errors ===
def help_text(doc):
    """The binary's docstring and its flags, grouped, each with its default and help."""
    import re

    lines = [textwrap.dedent(doc).strip(), ""]
    for group, names in GROUPS.items():
        lines.append(f"{group} flags:")
        for name in names:
            flag = FLAGS[name]
            text = re.sub(r"^<[^>]*>: ", "", flag.help)  # absl's enum prefix; the choices follow below
            text = re.sub(r";\s*repeat this option to specify a list of values$", "", text)
            default = "" if flag.default in (None, [], "") else f" (default: {flag.default_as_str})"
            choices = f" One of: {', '.join(flag.parser.enum_values)}." if hasattr(flag.parser, "enum_values") else ""
            wrapped = textwrap.fill(f"{text}{choices}{default}", width=96, initial_indent="      ",
                                    subsequent_indent="      ")
            lines += [f"  --{name}", wrapped]
        lines.append("")
    lines.append("Errors exit with status 2 and one line naming the fix. --helpfull lists absl's own flags too.")
    return "\n".join(lines)


NUMBER_ARGUMENT = re.compile(r"^-(\d|\.\d|inf|nan)", re.IGNORECASE)


def positional_numbers_last(argv):
    """`argv` with the arguments that start with a minus sign followed by a number (an inline series such as
    `-0.566,0.12`) moved after `--`, so that absl takes them as arguments rather than as unknown flags.

    The other arguments keep their order; the value of a flag given as `--name value` stays with its flag.
    """
    flags_part, positional, rest = [], [], list(argv[1:])
    while rest:
        arg = rest.pop(0)
        if arg == "--":
            positional += rest
            break
        if NUMBER_ARGUMENT.match(arg):
            positional.append(arg)
        elif arg.startswith("-") and arg != "-":
            flags_part.append(arg)
            name = arg.lstrip("-")
            if "=" not in name and rest and name in FLAGS and not FLAGS[name].boolean:
                flags_part.append(rest.pop(0))  # --name value
        else:
            positional.append(arg)
    if not any(NUMBER_ARGUMENT.match(a) for a in positional):
        return list(argv)
    return [argv[0]] + flags_part + ["--"] + positional


def parse_flags(argv):
    """absl's flag parsing, but a bad flag is a usage error (status 2) that points to --help; an argument
    that is a negative number (or a series starting with one) is an argument, not a flag."""
    try:
        return FLAGS(positional_numbers_last(argv))
    except flags.Error as e:
        print(f"{program_name()}: error: {e}\n{program_name()}: see {program_name()} --help", file=sys.stderr)
        sys.exit(2)


def error_summary(error):
    """The line of an exception that says what is wrong (unwrapping Keras' call-context wrapper)."""
    import re

    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if lines and lines[0].startswith("in user code:"):  # tf.function's wrapper: the cause is its last error line
        starts = [i for i, line in enumerate(lines) if re.match(r"^\w+(?:Error|Exception): .", line)]
        if starts:
            lines = [lines[starts[-1]].split(": ", 1)[1]] + lines[starts[-1] + 1:]
    if lines and lines[0].startswith("Exception encountered when calling") and len(lines) > 1:
        lines = lines[1:]
    return lines[0] if lines else type(error).__name__


INTERRUPTED = {  # what rerunning an interrupted binary does
    "tlbkit-train": "rerun to resume (the same command continues after the last finished epoch)",
    "tlbkit-ablate": "rerun to resume (the same command resumes the sweep)",
}


def run_main(main_fn, argv):
    """Runs `main_fn(argv)`; user errors become one or two lines and exit status 2."""
    from tlbkit import backends, pipeline, registry

    known = (UsageError, registry.UnknownNameError, pipeline.EmptyDatasetError, ValueError, TypeError,
             FileNotFoundError, PermissionError, RuntimeError)
    try:
        backends.check_supported()  # before Keras is imported: an unsupported backend stops here
        import_tensorflow_quietly()  # without TensorFlow 2.21's start-up notices (tlbkit.bin)
        main_fn(argv)
    except KeyboardInterrupt:
        if FLAGS.traceback:
            traceback.print_exc()
        print(f"{program_name()}: interrupted; {INTERRUPTED.get(program_name(), 'rerun the command to start again')}.",
              file=sys.stderr)
        sys.exit(130)
    except known as e:
        if FLAGS.traceback:
            traceback.print_exc()
        print(f"{program_name()}: error: {error_summary(e)}", file=sys.stderr)
        if not FLAGS.traceback:
            print(f"{program_name()}: (run with --traceback for details)", file=sys.stderr)
        sys.exit(2)


def run(main_fn, doc, define_flags):
    """The console-script entry of a binary: defines its flags, answers `--help`, then absl's `app.run`."""
    define_flags()
    define_output_flags()
    if any(arg in ("-h", "--help", "-?", "--helpshort") for arg in sys.argv[1:]):
        print(help_text(doc))
        sys.exit(0)
    app.run(lambda argv: run_main(main_fn, argv), flags_parser=parse_flags)
