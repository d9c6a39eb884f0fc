"""One decorator that exports a public symbol and registers it for Keras serialization."""

import keras


def tlbkit_export(path):
    """Registers a class as a Keras serializable under the `tlbkit` package.

    Args:
        path: str. The public path of the symbol, e.g. `"tlbkit.layers.TLBCell"`.
            Only the last component is used as the registered name, so saved
            `.keras` files refer to `tlbkit>TLBCell`.

    Returns:
        A decorator that returns the class unchanged.
    """
    package, _, name = path.rpartition(".")
    root = package.split(".")[0] or "tlbkit"

    def decorator(symbol):
        return keras.saving.register_keras_serializable(package=root, name=name)(symbol)

    return decorator
