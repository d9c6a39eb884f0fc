"""Where a training step's time goes: TensorFlow profiler trace of the keras-io model, summed by op type.

    python bench/profile.py --model=tlbkit --batch=256 [--steps=2] [--top=25]

Traces `--steps` training steps (after two warm-up steps) of one of bench/throughput.py's variants
(`--model=tlbkit`, `reference_rnn`, `tlbkit_autodiff`, `tlbkit_serial`), same shapes and data, and prints per op
type the thread time per step and the number of executions per step, summed over TensorFlow's compute
threads. Thread times add up across the 2 cores, so their total exceeds the step's wall time.
"""

import collections
import glob
import os
import sys
import tempfile
import time

from absl import app, flags

flags.DEFINE_string("model", "tlbkit", "A benchmark variant (tests/keras_io_reference.VARIANTS) to profile.")
flags.DEFINE_integer("batch", 256, "Batch size.")
flags.DEFINE_integer("steps", 2, "Profiled training steps.")
flags.DEFINE_integer("top", 25, "Op types to print.")
FLAGS = flags.FLAGS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(ROOT, "tests")  # keras_io_reference.py: the plain re-implementation of the keras-io example


def op_times(xplane_path, steps):
    """{op type: (thread seconds per step, executions per step)} from a profiler XSpace file."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    with open(xplane_path, "rb") as f:
        space.ParseFromString(f.read())
    seconds, counts = collections.Counter(), collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                op_type = name.split(":")[-1]
                seconds[op_type] += event.duration_ps / 1e12 / steps
                counts[op_type] += 1 / steps
    return {k: (seconds[k], counts[k]) for k in seconds}


def main(argv):
    del argv
    sys.path[:0] = [ROOT, TESTS]
    import tensorflow as tf

    from keras_io_reference import compiled_variant
    model, images, labels = compiled_variant(FLAGS.model, FLAGS.batch)
    for _ in range(2):
        model.train_on_batch(images, labels)
    logdir = tempfile.mkdtemp(prefix="tlbkit-profile-")
    tf.profiler.experimental.start(logdir)
    t0 = time.perf_counter()
    for _ in range(FLAGS.steps):
        model.train_on_batch(images, labels)
    wall = (time.perf_counter() - t0) / FLAGS.steps
    tf.profiler.experimental.stop()
    path = glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)[0]
    times = op_times(path, FLAGS.steps)
    rows = sorted(((k, v) for k, v in times.items() if k != "Process"), key=lambda kv: -kv[1][0])
    total = sum(s for k, (s, _) in times.items() if k != "Process")
    print(f"{FLAGS.model}, batch {FLAGS.batch}: {wall:.2f} s per profiled step (wall, profiler on); "
          f"{total:.2f} thread-s of ops per step")
    print(f"{'op type':32s}{'thread s/step':>15s}{'share':>8s}{'runs/step':>11s}")
    for name, (sec, count) in rows[: FLAGS.top]:
        print(f"{name[:32]:32s}{sec:15.3f}{sec / total:8.1%}{count:11.0f}")


if __name__ == "__main__":
    app.run(main)
