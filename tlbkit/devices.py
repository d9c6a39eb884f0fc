"""Devices, precision and `tf.distribute` strategies for the binaries."""

import os

PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker", "tpu")


def has_gpu():
    """Whether the Keras backend sees a GPU."""
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    if keras.backend.backend() == "jax":
        import jax

        return any(d.platform == "gpu" for d in jax.devices())
    return False


def setup(precision="auto", cpu_devices=0):
    """Sets the dtype policy (and optional logical CPU devices); returns the policy name.

    Must run before TensorFlow makes a tensor.

    Args:
        precision: str. One of `PRECISIONS`; `"auto"` is `mixed_float16` on a GPU, `float32` otherwise.
        cpu_devices: int. Split the CPU into this many logical devices (to try `mirrored` on a CPU).
    """
    import keras

    if precision not in PRECISIONS:
        raise ValueError(f"`precision` must be one of {PRECISIONS}. Received: precision={precision!r}")
    if cpu_devices:
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_devices)
    policy = precision
    if policy == "auto":
        policy = "mixed_float16" if has_gpu() else "float32"
    keras.mixed_precision.set_global_policy(policy)
    return policy


def make_strategy(name):
    """`(strategy or None, is_chief)` for a strategy name (see `STRATEGIES`)."""
    import tensorflow as tf

    if name not in STRATEGIES:
        raise ValueError(f"`strategy` must be one of {STRATEGIES}. Received: strategy={name!r}")
    if name == "auto":
        name = "mirrored" if len(tf.config.list_logical_devices("GPU")) > 1 else "one_device"
    if name == "one_device":
        return None, True
    if name == "mirrored":
        devices = [d.name for d in tf.config.list_logical_devices("GPU")] or [
            d.name for d in tf.config.list_logical_devices("CPU")
        ]
        return tf.distribute.MirroredStrategy(devices), True
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("strategy 'multi_worker' needs the TF_CONFIG environment variable (cluster and task).")
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        resolver = strategy.cluster_resolver
        is_chief = resolver.task_type in (None, "chief") or (
            resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in resolver.cluster_spec().as_dict()
        )
        return strategy, is_chief
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver), True
