"""Finding, parsing and explaining gin configs, each config with its source.

Configs come from *sources*: the `--gin_search_path` folders (each named by its path), the current
directory, the gin folders that installed plugin packages declare (entry-point group `tlbkit.gin`, each
named by its entry-point name), and the configs that ship with tlbkit (source `tlbkit`: package data of
`tlbkit_configs`, read through `importlib.resources`, so an installed wheel finds them from any folder).

A config named on the command line (`--gin_file=cifar10_cpu.gin`) or in an `include` is found as follows:

- `source:name` (`tlbkit:base.gin`, `bits:base.gin`): that source's config, and no other;
- a path with a folder part that exists (`my_configs/a.gin`, `./base.gin`, an absolute path): that file;
- a bare name: the one source that holds it. A name that two sources hold (a plugin shipping its own
  `base.gin`) is an error naming both qualified names: no source silently replaces another's config.

`tlbkit-train --list` shows every config with its source. A plugin package declares its folder of
`.gin` files next to its plugin module:

    [project.entry-points."tlbkit.plugins"]
    bits = "bits_plugin"
    [project.entry-points."tlbkit.gin"]
    bits = "bits_plugin.configs"     # a package (folder with __init__.py) holding bits.gin
"""

import contextlib
import copy
import importlib.metadata
import importlib.resources
import importlib.util
import logging
import os
import re

CONFIG_PACKAGE = "tlbkit_configs"
ENTRY_POINT_GROUP = "tlbkit.gin"
CONFIG_SUFFIXES = (".gin", ".sweep")
SHIPPED_SOURCE = "tlbkit"
CWD_SOURCE = "the current directory"
# Shipped configs that were renamed (the same recipes): asking for an old name fails with a message naming the new
# one, rather than a bare "not found". A file of the old name in a user's own folder is still found as usual.
RENAMED_CONFIGS = {
    "cifar10_seed.gin": "cifar10_keras_io.gin",
    "cifar10_seed_cpu.gin": "cifar10_keras_io_cpu.gin",
    "models/tlb_seed.gin": "models/tlb_keras_io.gin",
}

_PARSE_STATE = {"extra": ()}  # the --gin_search_path folders of the parse in progress (for gin's includes)


class GinConfigError(ValueError):
    """A gin file that cannot be found or parsed; the message is one line with the fix."""


# === Where configs are ===
def package_folder(package):
    """The folder of an installed package's data files, or None (not installed, or not a folder on disk).

    A data-only package without `__init__.py` (a namespace package, as `tlbkit_configs`) is located
    through its import spec: `importlib.resources.files` rejects namespace packages whose path holds a
    non-folder entry (as setuptools' editable installs add).
    """
    try:
        spec = importlib.util.find_spec(package)
    except (ModuleNotFoundError, ValueError):
        return None
    if spec is None:
        return None
    if spec.origin is not None:  # a regular package
        folder = str(importlib.resources.files(package))
        return folder if os.path.isdir(folder) else None
    folders = [p for p in (spec.submodule_search_locations or []) if os.path.isdir(p)]
    return folders[0] if folders else None


def shipped_folder():
    """The folder of the gin configs that ship with tlbkit."""
    folder = package_folder(CONFIG_PACKAGE)
    if folder is None:
        raise GinConfigError(f"the package {CONFIG_PACKAGE!r} (tlbkit's gin configs) is not installed: reinstall tlbkit.")
    return folder


def plugin_sources():
    """`[(source name, folder)]` of the gin folders installed plugin packages declare (group `tlbkit.gin`)."""
    found = []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        folder = package_folder(ep.value.split(":")[0])
        if folder is None:
            logging.getLogger("tlbkit").warning(
                "tlbkit.gin entry point %r names %r, which is not an installed package folder; skipped.",
                ep.name, ep.value)
        else:
            found.append((ep.name, folder))
    return found


def plugin_folders():
    """Gin folders declared by installed plugin packages (entry-point group `tlbkit.gin`)."""
    return [folder for _, folder in plugin_sources()]


def sources(extra=()):
    """`[(source name, folder)]` in search order: `extra` folders (named by their path), the current directory,
    plugins' gin folders (named by their entry point), tlbkit's (`tlbkit`); each folder once."""
    found, seen = [], set()
    for name, folder in ([(os.path.abspath(p), os.path.abspath(p)) for p in extra] + [(CWD_SOURCE, os.getcwd())]
                         + plugin_sources() + [(SHIPPED_SOURCE, shipped_folder())]):
        real = os.path.realpath(folder)
        if os.path.isdir(folder) and real not in seen:
            seen.add(real)
            found.append((name, folder))
    return found


def search_paths(extra=()):
    """Folders searched for configs and `include`s, in order (existing ones, no repeats)."""
    return [folder for _, folder in sources(extra)]


def holders(name, extra=()):
    """`[(source name, path)]` of every source holding the config `name` (one entry per distinct file)."""
    found, seen = [], set()
    for source, folder in sources(extra):
        path = os.path.join(folder, name)
        if os.path.isfile(path) and os.path.realpath(path) not in seen:
            seen.add(os.path.realpath(path))
            found.append((source, path))
    return found


def qualified(source, name):
    """How to name `name` of `source` unambiguously: `source:name`, or a path for a folder source."""
    if source == CWD_SOURCE:
        return os.path.join(".", name)
    return os.path.join(source, name) if os.path.isabs(source) else f"{source}:{name}"


def ambiguous(kind, name, found, qualify=None):
    """The message for `name` given by several sources: each source with its location, then the qualified names
    to choose from.

    Args:
        kind: str. What is named (`"config"`, `"preset"`).
        name: str. The bare name asked for.
        found: list of `(source, location)`.
        qualify: `(source, name) -> str`. Defaults to `qualified` (the configs' rule).
    """
    qualify = qualify or qualified
    return (f"{kind} {name!r} is given by {len(found)} sources: "
            + ", ".join(f"{source} ({where})" for source, where in found)
            + "; name the one you mean: " + " or ".join(repr(qualify(s, name)) for s, _ in found) + ".")


def _split_qualified(name, extra):
    """`(folder, config name)` for `source:name` naming a source, else None."""
    source, sep, rest = name.partition(":")
    if not sep or not rest:
        return None
    for source_name, folder in sources(extra):
        package = None
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if ep.name == source_name:
                package = ep.value.split(":")[0].split(".")[0]
        if source in (source_name, package):
            return folder, rest
    return None


def renamed_error(name):
    """The error for a shipped config asked for by its old name (`RENAMED_CONFIGS`), or None."""
    prefix = f"{SHIPPED_SOURCE}:" if name.startswith(f"{SHIPPED_SOURCE}:") else ""
    new = RENAMED_CONFIGS.get(name[len(prefix):])
    if new is None:
        return None
    return GinConfigError(f"config {name!r} was renamed {prefix + new!r} (the same recipe): use "
                          f"--gin_file={prefix + new} (in a config: include '{prefix + new}').")


def resolve(name, extra=()):
    """The path of a config given by qualified name, path or name (see the module docstring).

    Raises:
        GinConfigError: naming the folders searched, or the sources that both hold a bare name, or the new name
            of a renamed shipped config.
    """
    split = _split_qualified(name, extra)
    if split is not None:
        path = os.path.join(*split)
        if os.path.isfile(path):
            return path
        raise renamed_error(name) or GinConfigError(
            f"config {name!r} not found: {split[0]} holds no {split[1]!r}. See the configs with --list.")
    if os.path.isabs(name) or (os.path.dirname(name) and os.path.isfile(name)):
        if os.path.isfile(name):
            return os.path.abspath(name)
    else:
        found = holders(name, extra)
        if len(found) == 1:
            return found[0][1]
        if len(found) > 1:
            raise GinConfigError(ambiguous("config", name, found))
        if name in RENAMED_CONFIGS:
            raise renamed_error(name)
    raise GinConfigError(
        f"config file {name!r} not found (searched: {', '.join(search_paths(extra))}). "
        "Give a path, add its folder with --gin_search_path, or see the shipped configs with --list."
    )


def configs_with_sources(suffixes=CONFIG_SUFFIXES, extra=()):
    """`{name: [source names]}` of every config of the plugins' and tlbkit's gin folders (and of `extra`)."""
    found = {}
    for source, folder in sources(extra):
        if source == CWD_SOURCE:
            continue
        for parent, _, files in os.walk(folder):
            for f in files:
                if f.endswith(suffixes):
                    name = os.path.relpath(os.path.join(parent, f), folder).replace(os.sep, "/")
                    found.setdefault(name, []).append(source)
    return dict(sorted(found.items()))


def shipped_configs(suffixes=CONFIG_SUFFIXES):
    """Names (relative paths) of the configs that ship with tlbkit and with installed plugins."""
    return sorted(configs_with_sources(suffixes))


# === Gin's file reading: includes resolve as --gin_file does ===
def _include_exists(path):
    if os.path.isabs(path):
        return False  # gin's own reader opens absolute paths
    resolve(path, _PARSE_STATE["extra"])  # raises for an ambiguous name: never a silent pick
    return True


def _include_open(path):
    return open(resolve(path, _PARSE_STATE["extra"]))


def _install_reader():
    """Puts the source-aware reader before gin's own, so that `include 'base.gin'` resolves as `resolve` does."""
    import gin.config

    readers = gin.config._FILE_READERS  # gin offers only appending (register_file_reader); ours must come first
    if not any(reader is _include_open for reader, _ in readers):
        readers.insert(0, (_include_open, _include_exists))


# === Parsing ===
@contextlib.contextmanager
def quiet_gin_logging():
    """gin logs every search-path miss of an `include` as an error; silence that while parsing."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        root.setLevel(level)


def parse(files, params, extra_search=(), skip_unknown=False):
    """Parses gin files (by path or name) and bindings; returns the parsed config text.

    The parsed config replaces whatever was parsed before in this process (gin locks a parsed config, so a
    second `tlbkit.train`, `TLBClassifier.fit` or sweep trial in one process would otherwise fail). The
    built-in and installed plugins are imported first (`plugins.ensure_loaded`), so configs find their
    registered names whatever the caller imported.

    Raises:
        GinConfigError: one line naming the problem (unknown names list the registered ones).
    """
    import gin

    from tlbkit import plugins

    plugins.ensure_loaded()  # the built-in and installed plugins register their names with gin on import
    _install_reader()  # includes resolve by source, as --gin_file does
    paths = [resolve(f, extra_search) for f in files]
    gin.clear_config()
    _PARSE_STATE["extra"] = tuple(extra_search)
    with quiet_gin_logging():
        try:
            gin.parse_config_files_and_bindings(paths, list(params), skip_unknown=skip_unknown)
        except GinConfigError as e:
            raise GinConfigError("gin config error: " + str(e).strip().splitlines()[0]) from e
        except (ValueError, SyntaxError, KeyError, ImportError, IOError) as e:
            raise GinConfigError("gin config error: " + explain_error(str(e))) from e
        finally:
            _PARSE_STATE["extra"] = ()
    return gin.config_str()


def explain_error(message):
    """The first line of a gin error, with the registered names added to 'No configurable matching' errors."""
    from tlbkit import registry

    text = message.strip()
    first = text.splitlines()[0] if text else message
    match = re.search(r"No configurable matching (?:reference )?'@?([\w./]+?)(?:\(\))?'", message)
    if match:
        name = match.group(1)
        kind = name.split(".")[0]
        if kind in registry.ALL:
            names = ", ".join(f"{kind}.{n}" for n in registry.ALL[kind].names())
            return f"unknown {kind[:-1]} '{name}'. Registered {kind}: {names}."
        return f"unknown configurable '{name}'. Run with --list to see the registered names."
    match = re.search(r"No bindings specified for '(\w+)/gin\.macro'", message)
    if match:
        return (f"the macro {match.group(1)} is read but no config sets it: include one that does (the model sizes, "
                f"DIM, NUM_HEADS, ..., come from a size, sizes/*.gin) or add --gin_param='{match.group(1)} = ...'.")
    match = re.search(r"(\w+)/macro\.value set to `%gin\.REQUIRED` but not subsequently overridden", message)
    if match:
        return (f"the macro {match.group(1)} is required and no config sets it: set it in the task file or add "
                f"--gin_param='{match.group(1)} = ...'.")
    match = re.search(r"Unable to open file: ([^.]+\.\w+)", message)
    if match:
        return f"included file {match.group(1)!r} not found; add its folder with --gin_search_path."
    return first + ("" if first == text else " (" + " ".join(text.splitlines()[1:3]) + ")")


def evaluate_binding(key):
    """The value bound to `key` (e.g. `"train.dataset"`), with `@x()` references and macros evaluated.

    Raises:
        GinConfigError: when nothing is bound to `key`.
    """
    import gin

    try:
        value = gin.query_parameter(key)
    except ValueError as e:
        raise GinConfigError(f"the config binds no {key!r} ({e}).") from e
    return copy.deepcopy(value)  # gin's references evaluate themselves when deep-copied


def effective_arguments(fn, selector, names=None):
    """`{parameter: value}` that gin would call `fn` (the configurable `selector`, e.g. `train`) with: each bound
    value (macros and references evaluated, as `evaluate_binding`), else `fn`'s default (`gin.REQUIRED` for a
    parameter with neither).

    Args:
        fn: the function or class registered as `selector`.
        selector: str. Its gin name, e.g. `"train"`, `"datasets.listops"`.
        names: list of str. The parameters to give. Defaults to all but `self`, `*args` and `**kwargs`.
    """
    import inspect

    import gin

    signature = inspect.signature(fn.__init__ if inspect.isclass(fn) else fn).parameters
    names = names or [p.name for p in signature.values()
                      if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    values = {}
    for name in names:
        try:
            values[name] = copy.deepcopy(gin.query_parameter(f"{selector}.{name}"))
        except ValueError:
            default = signature[name].default
            values[name] = gin.REQUIRED if default is inspect.Parameter.empty else default
    return values

