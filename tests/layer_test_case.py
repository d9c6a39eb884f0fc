"""`run_layer_test` for tlbkit's own layers: `tlbkit.testing.run_layer_test` (the kit plugin authors use), plus
a check that the layer registers under tlbkit's packages."""

import keras

from tlbkit import testing


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


def run_layer_test(make_layer, inputs, **kwargs):
    """`tlbkit.testing.run_layer_test(make_layer, inputs, **kwargs)`; the serialized layer names tlbkit's
    package (`tlbkit>` or `tlbkit_tasks>`). Returns the layer."""
    layer = testing.run_layer_test(make_layer, inputs, **kwargs)
    registered = keras.saving.serialize_keras_object(layer)["registered_name"]
    assert registered.split(">")[0] in ("tlbkit", "tlbkit_tasks"), registered
    return layer


def assert_model_reloads(tokenizer, inputs, path, dim=16):
    """A small TLB classifier around `tokenizer` survives tlbkit's save and checked load with equal outputs
    (`tlbkit.testing.run_saving_test`, writing into `path`'s folder)."""
    testing.run_saving_test(testing.small_classifier(tokenizer, dim=dim), inputs, folder=str(path.parent))
