import os
import tempfile

import tlbkit.bin  # noqa: E402  sets TF_CPP_MIN_LOG_LEVEL=2 unless set

tlbkit.bin.import_tensorflow_quietly()  # as the binaries do: without TensorFlow's start-up notices
# One cache for the test processes and the binaries they start (extracted archives, JAX's compiled programs),
# outside the user's ~/.cache: the JAX tests reuse each other's compiles.
os.environ.setdefault("TLBKIT_CACHE", os.path.join(tempfile.gettempdir(), f"tlbkit-test-cache-{os.getuid()}"))

import keras  # noqa: E402
import pytest  # noqa: E402

import tlbkit.plugins  # noqa: E402

tlbkit.plugins.load_all()


@pytest.fixture(autouse=True)
def _no_gin_bindings():
    """Each test starts without gin bindings: `tlbkit.train.train` reads unpassed arguments from gin, so a
    binding one test left would change another's run (the library itself clears what it parsed:
    `tlbkit.bin.train.train_from_config`, tested in test_series_data)."""
    import gin

    gin.clear_config()
    yield


@pytest.fixture(autouse=True)
def _float32_policy():
    keras.config.set_dtype_policy("float32")
    yield
    keras.config.set_dtype_policy("float32")


@pytest.fixture(scope="session")
def shared_recall_run(tmp_path_factory):
    """`recall_cpu.gin` shrunk (`binaries.TINY`), one epoch of two steps, validated: a finished run shared by
    the tests that only read one (`binaries.shared_run`)."""
    from binaries import SHARED_RECALL, shared_run

    return shared_run(tmp_path_factory, *SHARED_RECALL)
