"""Registering classes for Keras serialization, so that `.keras` files name them and load them back."""

import keras


def register_serializable(path):
    """Registers a class as a Keras serializable under the top-level package of `path`.

    Args:
        path: str. The public path of the class, e.g. `"tlbkit.layers.TLBCell"`. Its first component is
            the registered package and its last the registered name, so saved `.keras` files refer to
            `tlbkit>TLBCell` (a plugin's `"tlbkit_tasks.vision.PatchTokenizer"`: `tlbkit_tasks>PatchTokenizer`).

    Returns:
        A decorator that returns the class unchanged.
    """
    package, _, name = path.rpartition(".")
    root = package.split(".")[0] or "tlbkit"

    def decorator(symbol):
        return keras.saving.register_keras_serializable(package=root, name=name)(symbol)

    return decorator


def register_renamed(old_path, symbol):
    """Lets files saved before a rename load: the registered name that `register_serializable(old_path)` gave
    now also finds `symbol` (a file saved again names `symbol` by its new name).

    Args:
        old_path: str. The public path the class had, e.g. `"tlbkit.losses.SparseCategoricalCrossentropy"`.
        symbol: the class, registered under its new name.
    """
    package, _, name = old_path.rpartition(".")
    keras.saving.get_custom_objects()[f"{package.split('.')[0] or 'tlbkit'}>{name}"] = symbol
