"""Finding, parsing and explaining gin configs.

A config named on the command line (`--gin_file=cifar10_cpu.gin`) or in an `include` is looked up, in
order, as a path (absolute or relative to the current directory), then in the `--gin_search_path`
folders, the current directory, the gin folders that installed plugin packages declare (entry-point
group `tlbkit.gin`), and last the configs that ship with tlbkit (package data of `tlbkit_configs`,
read through `importlib.resources`, so an installed wheel finds them by name from any folder).

A plugin package declares its folder of `.gin` files next to its plugin module:

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


_ADDED_SEARCH_PATHS = set()


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


def plugin_folders():
    """Gin folders declared by installed plugin packages (entry-point group `tlbkit.gin`)."""
    folders = []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        folder = package_folder(ep.value.split(":")[0])
        if folder is None:
            logging.getLogger("tlbkit").warning(
                "tlbkit.gin entry point %r names %r, which is not an installed package folder; skipped.",
                ep.name, ep.value)
        else:
            folders.append(folder)
    return folders


def search_paths(extra=()):
    """Folders searched for configs and `include`s, in order (existing ones, no repeats)."""
    paths = [os.path.abspath(p) for p in extra] + [os.getcwd()] + plugin_folders() + [shipped_folder()]
    return list(dict.fromkeys(p for p in paths if os.path.isdir(p)))


def resolve(name, extra=()):
    """The path of a config given by path or by name (see the module docstring).

    Raises:
        GinConfigError: naming the folders searched.
    """
    if os.path.isfile(name):
        return os.path.abspath(name)
    if not os.path.isabs(name):
        for folder in search_paths(extra):
            candidate = os.path.join(folder, name)
            if os.path.isfile(candidate):
                return candidate
    raise GinConfigError(
        f"config file {name!r} not found (searched: {', '.join(search_paths(extra))}). "
        "Give a path, add its folder with --gin_search_path, or see the shipped configs with --list."
    )


def shipped_configs(suffixes=CONFIG_SUFFIXES):
    """Names (relative paths) of the configs that ship with tlbkit and with installed plugins."""
    names = set()
    for folder in plugin_folders() + [shipped_folder()]:
        for parent, _, files in os.walk(folder):
            for f in files:
                if f.endswith(suffixes):
                    names.add(os.path.relpath(os.path.join(parent, f), folder).replace(os.sep, "/"))
    return sorted(names)


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

    The built-in and installed plugins are imported first (`plugins.ensure_loaded`), so configs find
    their registered names whatever the caller imported.

    Raises:
        GinConfigError: one line naming the problem (unknown names list the registered ones).
    """
    import gin

    from tlbkit import plugins

    plugins.ensure_loaded()  # the built-in and installed plugins register their names with gin on import
    for path in search_paths(extra_search):
        if path not in _ADDED_SEARCH_PATHS:  # gin keeps a process-wide list: add each folder once
            gin.add_config_file_search_path(path)
            _ADDED_SEARCH_PATHS.add(path)
    paths = [resolve(f, extra_search) for f in files]
    with quiet_gin_logging():
        try:
            gin.parse_config_files_and_bindings(paths, list(params), skip_unknown=skip_unknown)
        except (ValueError, SyntaxError, KeyError, ImportError, IOError) as e:
            raise GinConfigError("gin config error: " + explain_error(str(e))) from e
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
