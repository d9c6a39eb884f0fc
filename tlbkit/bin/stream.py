r"""tlbkit-stream: feeds each input to a trained model chunk by chunk, printing a prediction after each chunk.

    tlbkit-stream --model_dir=runs/gunpoint series.csv [--print_every=10] [--check]
    tlbkit-stream --preset=my_presets/gunpoint -0.566,-0.511,...        # an inline series
    cat series.txt | tlbkit-stream --model_dir=runs/gunpoint -            # one input per line

Inputs are read as tlbkit-predict reads them (files by the run's dataset plugin; text parsed by it), so
any run or preset streams, a plugin's included, if its tokenizer implements the streaming contract and
its encoder is the TLB (docs/streaming.md). Only the encoder's slow state and the tokenizer's carry are
kept between chunks. --check compares the logits after each chunk with a whole-sequence call on the
same prefix and fails when they differ (for tokenizers that stream exactly).
"""

import os

from absl import flags

from tlbkit.bin import cli, predict

FLAGS = flags.FLAGS


def define_flags():
    cli.define_trained_run_flags()
    cli.define_flag("Output", flags.DEFINE_integer, "print_every", 1, "Print a prediction every N chunks (and "
                    "after the last one).")
    cli.define_flag("Output", flags.DEFINE_boolean, "check", False, "Compare each chunk's logits with a "
                    "whole-sequence call on the prefix; exit 2 when they differ by more than 1e-4.")
    cli.define_data_flags()
    cli.define_gin_flags(files=False, params_help="Gin binding overriding the run's config.gin.")
    cli.define_device_flags(strategy=False)


def main(argv):
    if FLAGS.print_every < 1:
        raise cli.UsageError(f"--print_every must be >= 1. Received: {FLAGS.print_every}")
    cli.check_trained_run_flags()  # before the plugins load Keras and TensorFlow
    cli.load_plugins()
    if FLAGS.list_presets:
        return print(cli.list_presets())
    inputs = predict.read_arguments(argv[1:])
    if not inputs:
        raise cli.UsageError("give at least one input (a file, the input itself, or - for standard input).")
    cli.apply_data_dir()
    cli.setup_devices()
    folder = cli.trained_run_dir()
    import keras
    import numpy as np

    from tlbkit import evaluate, streaming

    spec = evaluate.run_spec()
    streamer = streaming.Streamer(evaluate.load_run_model(folder, cli.checkpoint_of(folder)))
    names = evaluate.class_names(folder, spec)
    print(f"tlbkit-stream: chunks of {streamer.steps} steps ({streamer.tokens_per_chunk} tokens)")
    if streamer.views:
        print(f"tlbkit-stream: the model's test-time views ({', '.join(streamer.views)}) are not applied: a stream "
              "reads each input once, so its predictions are the model's without them (tlbkit-predict applies them).")
    worst = 0.0
    for group, examples in evaluate.read_examples(spec, inputs):
        for i, name in enumerate(group):
            shown = os.path.basename(name) if os.path.isfile(name) else name[:40]
            example = streaming.trim_padding(keras.tree.map_structure(lambda x: x[i: i + 1], examples))
            chunks = list(streamer.stream(example))
            for k, (seen, logits) in enumerate(chunks, 1):
                if k % FLAGS.print_every and k != len(chunks):
                    continue
                probs = np.asarray(keras.ops.convert_to_numpy(keras.ops.softmax(logits)))[0]
                print(f"{shown}  chunk {k:5d}  steps {seen:7d}  {names[int(probs.argmax())]}  p={probs.max():.4f}")
            if FLAGS.check:
                worst = max(worst, streamer.check(example))
    if FLAGS.check:
        print(f"check: streamed vs whole-sequence logits on every prefix: max difference {worst:.2e}")
        if streamer.exact and worst > streaming.CHECK_ATOL:
            raise cli.UsageError(f"streaming differs from the whole-sequence call by {worst:.2e} "
                                 f"(> {streaming.CHECK_ATOL}): the tokenizer's stream_embed or carry is wrong.")


def run():
    cli.run(main, __doc__, define_flags)


if __name__ == "__main__":
    run()
