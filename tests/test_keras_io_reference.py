"""tlbkit's keras-io mode computes what a plain Keras RNN implementation of the keras-io example computes."""

import keras
import numpy as np

from keras_io_reference import KerasIOModel, build_tlbkit_keras_io, copy_weights_to_tlbkit


def test_keras_io_mode_matches_plain_rnn_reference():
    keras.utils.set_random_seed(3)
    images = np.random.default_rng(0).uniform(size=(3, 48, 48, 3)).astype("float32")
    reference = KerasIOModel()
    expected = keras.ops.convert_to_numpy(reference(images))
    assert reference.count_params() == 364_810
    ours = build_tlbkit_keras_io()
    ours(images * 255.0)  # tlbkit's image tokenizers take 0-255 pixels and scale them by their input_scale (1/255)
    copy_weights_to_tlbkit(reference, ours)
    got = keras.ops.convert_to_numpy(keras.ops.softmax(ours(images * 255.0)))
    np.testing.assert_allclose(got, expected, atol=2e-5)
    # Not trivially equal: the prediction changes with the image.
    assert np.abs(expected[0] - expected[1]).max() > 1e-4
