"""Finding plugins: the built-in ones, installed entry points and modules named by the user."""

import importlib
import importlib.metadata

from absl import logging

ENTRY_POINT_GROUP = "tlbkit.plugins"
BUILTIN = ("tlbkit.builtins", "tlbkit_tasks")


class PluginError(ImportError):
    """A plugin module could not be imported."""


def import_plugin(module_name):
    """Imports a plugin module by dotted name; importing it registers its plugins."""
    try:
        return importlib.import_module(module_name)
    except ImportError as e:
        raise PluginError(
            f"Cannot import plugin module {module_name!r}: {e}. Check the name and "
            "that its package is installed (or on PYTHONPATH)."
        ) from e


def load_entry_points():
    """Imports every module advertised in the `tlbkit.plugins` entry-point group."""
    loaded = []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()
            loaded.append(ep.name)
        except Exception as e:  # a broken third-party plugin must not stop the rest
            logging.warning("tlbkit plugin entry point %r failed to load: %s", ep.name, e)
    return loaded


_loaded = False


def load_all(extra_modules=()):
    """Built-ins, then entry points, then `extra_modules` (e.g. from --plugin)."""
    global _loaded
    for name in BUILTIN:
        import_plugin(name)
    load_entry_points()
    _loaded = True
    for name in extra_modules:
        import_plugin(name)


def ensure_loaded():
    """`load_all()` once per process: what parsing a config needs to find the registered names (a library
    user who imports only `tlbkit` and calls `gin_utils.parse` gets every installed plugin)."""
    if not _loaded:
        load_all()
