"""Which way of running a TFLite file is fastest here? Batch-1 latency of each exported file through every
path `ai_edge_litert` offers on a CPU, interleaved so that all paths see the same machine conditions.

    python -m benchmarks.litert_paths --tflite_dir=runs/cifar10_quick/tflite --threads=1

Paths: the `Interpreter` with its default op resolver (applies XNNPACK), the `Interpreter` without default
delegates (builtin kernels), and the `CompiledModel` API with CPU kernel mode XNNPACK and BUILTIN.
Writes ``litert_paths.{json,md}`` next to ``--output``.
"""

import glob
import json
import os

from absl import app, flags

from akd_tf.command import command_line

FLAGS = flags.FLAGS


def define_flags():
    """Defined when run as a program only: tests import this module beside others that define the same flags."""
    flags.DEFINE_string("tflite_dir", None, "Directory of student_<mode>.tflite files.", required=True)
    flags.DEFINE_integer("threads", 1, "CPU threads for every path.")
    flags.DEFINE_integer("rounds", 5, "Interleaved rounds; each times `invokes` runs of every path.")
    flags.DEFINE_integer("invokes", 200, "Timed invokes per path per round (after 20 warm-up invokes).")
    flags.DEFINE_string("output", "benchmarks/results/litert_paths", "Output path prefix (.json and .md).")


def _paths(model, threads):
    import numpy as np
    from ai_edge_litert.compiled_model import (CompiledModel, CpuKernelMode, CpuOptions, HardwareAccelerator,
                                               Options)
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    def interpreter(resolver):
        it = Interpreter(model_content=model, num_threads=threads, experimental_op_resolver_type=resolver)
        it.allocate_tensors()
        detail = it.get_input_details()[0]
        x = np.zeros(detail["shape"], detail["dtype"])

        def run():
            it.set_tensor(detail["index"], x)
            it.invoke()
        return run

    def compiled(mode):
        cm = CompiledModel.from_buffer(model, options=Options(
            hardware_accelerators=HardwareAccelerator.CPU, cpu_options=CpuOptions(num_threads=threads, kernel_mode=mode)))
        inputs, outputs = cm.create_input_buffers(0), cm.create_output_buffers(0)
        it = Interpreter(model_content=model)
        detail = it.get_input_details()[0]
        x = np.zeros(detail["shape"], detail["dtype"])

        def run():
            inputs[0].write(x)
            cm.run_by_index(0, inputs, outputs)
        return run

    return {
        "Interpreter (default: XNNPACK)": interpreter(OpResolverType.AUTO),
        "Interpreter, builtin kernels": interpreter(OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES),
        "CompiledModel, XNNPACK": compiled(CpuKernelMode.XNNPACK),
        "CompiledModel, builtin kernels": compiled(CpuKernelMode.BUILTIN),
    }


def main(argv):
    del argv
    import numpy as np

    from export import runtime

    files = sorted(glob.glob(os.path.join(FLAGS.tflite_dir, "*.tflite")))
    if not files:
        raise app.UsageError(f"No .tflite files in --tflite_dir={FLAGS.tflite_dir!r}")
    runners = {}
    for path in files:
        with open(path, "rb") as f:
            for name, run in _paths(f.read(), FLAGS.threads).items():
                runners[(os.path.basename(path), name)] = run
    medians = {key: [] for key in runners}
    for round_ in range(FLAGS.rounds):
        for key, run in runners.items():
            medians[key].append(float(np.median(runtime.time_calls(run, FLAGS.invokes, warmup=20))))
        print(f"round {round_ + 1}/{FLAGS.rounds} done", flush=True)
    names = list(dict.fromkeys(name for _, name in runners))
    lines = [f"Batch-1 latency in µs ({FLAGS.threads} thread(s)), median of {FLAGS.invokes} invokes; "
             f"best of {FLAGS.rounds} interleaved rounds. Files: `{FLAGS.tflite_dir}`.", "",
             "| file | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for path in files:
        base = os.path.basename(path)
        lines.append(f"| {base} | " + " | ".join(f"{min(medians[(base, n)]):.0f}" for n in names) + " |")
    command = command_line("benchmarks.litert_paths",
                           [FLAGS[k].serialize() for k in ("tflite_dir", "threads", "rounds", "invokes")])
    lines += ["", f"Command: `{command}`"]
    os.makedirs(os.path.dirname(FLAGS.output) or ".", exist_ok=True)
    with open(FLAGS.output + ".json", "w") as f:
        json.dump({"command": command, "median_us_per_round": {f"{a} | {b}": v for (a, b), v in medians.items()}},
                  f, indent=2)
    with open(FLAGS.output + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    define_flags()
    app.run(main)
