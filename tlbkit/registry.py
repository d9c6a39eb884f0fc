"""One registry per kind of plugin, backed by gin so a `.gin` file selects a plugin by name.

A plugin registers itself on import:

    from tlbkit import registry

    @registry.TOKENIZERS.register("patch")
    class PatchTokenizer(keras.layers.Layer): ...

Gin then knows it as `tokenizers.patch` (`@tokenizers.patch()` builds one,
`tokenizers.patch.patch_size = 4` binds a parameter), and Python code can build
it from the string `"patch"` with `registry.TOKENIZERS.build("patch")`. Unknown
names raise an error that lists the registered ones.
"""

import difflib
import inspect

import gin


class UnknownNameError(ValueError):
    """Raised for a plugin name that nothing registered."""


class Registry:
    """Named plugins of one kind (tokenizers, encoders, ...).

    Args:
        kind: str. Plural kind name; also the gin module (`tokenizers.patch`).
    """

    def __init__(self, kind):
        self.kind = kind
        self._entries = {}

    def register(self, name=None):
        """Decorator: registers a class or function under `name` (default: its own name).

        The object itself is returned unchanged; gin bindings apply when it is
        built through gin or through `get`/`build`.
        """

        def decorator(obj):
            key = name or obj.__name__
            old = self._entries.get(key)
            if old is not None and old[0] is not obj:
                if getattr(old[0], "__qualname__", None) == getattr(obj, "__qualname__", None) and (
                    getattr(old[0], "__module__", None) == getattr(obj, "__module__", None)
                ):
                    return obj  # the same module imported twice (e.g. reloaded)
                raise ValueError(
                    f"{self.kind} name {key!r} is already registered by "
                    f"{old[0].__module__}.{old[0].__qualname__}; choose another name."
                )
            if old is None:
                wrapped = gin.external_configurable(obj, name=key, module=self.kind)
                self._entries[key] = (obj, wrapped)
            return obj

        return decorator

    def names(self):
        return sorted(self._entries)

    def __contains__(self, name):
        return name in self._entries

    def get(self, name):
        """The gin-aware constructor registered under `name`."""
        if name not in self._entries:
            close = difflib.get_close_matches(str(name), self.names(), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise UnknownNameError(
                f"Unknown {self.kind[:-1]} {name!r}.{hint} Registered {self.kind}: "
                f"{', '.join(self.names()) or '(none)'}. A plugin package must be "
                "imported (--plugin=module) or installed with a 'tlbkit.plugins' entry point."
            )
        return self._entries[name][1]

    def build(self, spec, **kwargs):
        """Builds a plugin from a registered name, a callable or an instance.

        Args:
            spec: str (registered name), callable (e.g. a gin `@ref` without
                parentheses) called with `kwargs`, or an already built object
                (returned as is).
        """
        if isinstance(spec, str):
            return self.get(spec)(**kwargs)
        if callable(spec) and (inspect.isclass(spec) or inspect.isfunction(spec) or hasattr(spec, "__wrapped__")):
            return spec(**kwargs)
        return spec

    def describe(self, name):
        """`[(parameter, default or 'REQUIRED')]` of a registered plugin."""
        obj = self._entries[name][0]
        target = obj.__init__ if inspect.isclass(obj) else obj
        params = []
        for p in inspect.signature(target).parameters.values():
            if p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            params.append((p.name, "REQUIRED" if p.default is p.empty else p.default))
        return params


TOKENIZERS = Registry("tokenizers")
CELLS = Registry("cells")
ENCODERS = Registry("encoders")
HEADS = Registry("heads")
DATASETS = Registry("datasets")
MODELS = Registry("models")
VIEWS = Registry("views")  # test-time views of a batch (SequenceClassifier.test_time_views)

ALL = {r.kind: r for r in (TOKENIZERS, CELLS, ENCODERS, HEADS, DATASETS, MODELS, VIEWS)}
