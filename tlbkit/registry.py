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
import re

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

    def gin_name(self, obj):
        """`'<kind>.<name>'`, the gin name `obj` (a registered class or function) was registered under, or
        None (a subclass that did not register itself has none)."""
        for key, (registered, _) in self._entries.items():
            if registered is obj:
                return f"{self.kind}.{key}"
        return None

    def describe(self, name):
        """`[(parameter, default or 'REQUIRED', meaning)]` of a registered plugin (see `parameters`)."""
        return parameters(self._entries[name][0])


# === What each parameter means, from the docstrings ===
ARGS_HEADING = re.compile(r"^(Args|Arguments):\s*$")
ARG_ENTRY = re.compile(r"^\*{0,2}(\w+(?:, \*{0,2}\w+)*)(?: \([^)]*\))?:\s*(.*)$")
AS_IN = re.compile(r"^as in `(\w+)\.(\w+)`\.?$")  # `missing, seed: as in `datasets.ts_files`.`
SENTENCE_END = re.compile(r"(?<![ (]e\.g\.)(?<![ (]i\.e\.)(?<=[.!?])\s+(?=[A-Z`\"(])")
LINE_WIDTH = 150


def parameters(obj, skip=()):
    """`[(parameter, default or 'REQUIRED', meaning)]` of a function or class (its `__init__`), in signature
    order, without `self`, `*args`, `**kwargs` and the names in `skip`.

    The meaning is one line taken from the docstring's Google-style `Args:` section (`name: type. Meaning.`;
    `a, b: ...` documents both; `as in `kind.name`.` points to another registered plugin's entry): its first
    sentences up to about 100 characters, without a `Defaults to` sentence when the default is listed beside
    it; `''` for an undocumented parameter.
    """
    target = obj.__init__ if inspect.isclass(obj) else obj
    texts = documented_arguments(obj)
    found = []
    for p in inspect.signature(target).parameters.values():
        if p.name in ("self", *skip) or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        default = "REQUIRED" if p.default is p.empty or p.default is gin.REQUIRED else p.default
        found.append((p.name, default, one_line(texts.get(p.name, ""), keep_default=default is None)))
    return found


def documented_arguments(obj):
    """`{parameter: text}` of the `Args:` sections of `obj`'s docstring (and of a class's own `__init__`)."""
    docs = [inspect.getdoc(obj)]
    if inspect.isclass(obj) and "__init__" in vars(obj):
        docs.append(inspect.getdoc(vars(obj)["__init__"]))
    texts = {}
    for doc in filter(None, docs):
        heading = entry = names = None
        for line in doc.splitlines():
            indent = len(line) - len(line.lstrip())
            if ARGS_HEADING.match(line.strip()):
                heading, entry, names = indent, None, None
            elif heading is None or not line.strip():
                continue
            elif indent <= heading:
                heading = None
            elif entry is None or indent == entry:
                match = ARG_ENTRY.match(line.strip())
                if match is None:
                    heading = None
                    continue
                entry, names = indent, [n.strip("* ") for n in match.group(1).split(",")]
                for n in names:
                    texts[n] = match.group(2)
            elif indent > entry:
                for n in names:
                    texts[n] += " " + line.strip()
    for name, text in texts.items():
        match = AS_IN.match(text.strip())
        if match and match.group(1) in ALL and match.group(2) in ALL[match.group(1)]:
            texts[name] = documented_arguments(ALL[match.group(1)]._entries[match.group(2)][0]).get(name, text)
    return texts


def one_line(text, keep_default=False):
    """The first sentences of `text` that fit in about 100 characters (at least one, and more while the line
    is under 30 characters, so that a bare type such as `int.` gets its meaning), as one line of at most
    `LINE_WIDTH` characters (cut at a word, with an ellipsis)."""
    sentences = [s for s in SENTENCE_END.split(" ".join(text.split()))
                 if s and (keep_default or not s.startswith("Defaults to"))]
    line = ""
    for sentence in sentences:
        if line and len(line) + len(sentence) > 100 and len(line) > 30:
            break
        line = f"{line} {sentence}".strip()
    return line if len(line) <= LINE_WIDTH else line[:LINE_WIDTH - 2].rsplit(" ", 1)[0] + " …"


TOKENIZERS = Registry("tokenizers")
CELLS = Registry("cells")
ENCODERS = Registry("encoders")
HEADS = Registry("heads")
DATASETS = Registry("datasets")
MODELS = Registry("models")
VIEWS = Registry("views")  # test-time views of a batch (SequenceClassifier.test_time_views)

ALL = {r.kind: r for r in (TOKENIZERS, CELLS, ENCODERS, HEADS, DATASETS, MODELS, VIEWS)}
