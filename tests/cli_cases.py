"""Runs many command lines of one of the tool's CLIs in one interpreter (one TensorFlow start instead of one per
case; ~7 s each on 2 cores). Each case goes through the CLI's own flag parsing and ``main``, with the flags
reset in between, and reports its exit status, stdout and stderr (with its log lines), as ``app.run`` would end
the process.

    python tests/cli_cases.py akd_tf.main cases.json results.json      # cases: {name: [argv...]}
    python tests/cli_cases.py export.tflite cases.json results.json
    python tests/cli_cases.py benchmarks.budget_curve cases.json results.json

One CLI per process: the two define some flags of the same name.
"""

import contextlib
import importlib
import io
import json
import sys


def _call(cli, argv):
    """The exit status ``app.run(cli.main)`` would give for ``argv``."""
    from absl import flags

    prog = cli.__name__
    if hasattr(cli, "parse_flags"):  # akd_tf.main: its own one-line parser errors
        args = cli.parse_flags([prog, *argv])
    else:
        args = flags.FLAGS([prog, *argv])
    if flags.FLAGS["verbosity"].using_default_value:  # as app.run does after parsing: INFO lines are logged
        flags.FLAGS.verbosity = 0
    return cli.main(args) or 0


@contextlib.contextmanager
def _stream(handler, stream):
    """The log handler writes to ``stream`` (it took the real stderr when absl was imported)."""
    previous, handler.stream = handler.stream, stream
    try:
        yield
    finally:
        handler.stream = previous


def run_cases(module, cases):
    from absl import flags

    cli = importlib.import_module(module)
    if hasattr(cli, "define_flags"):  # a tool that defines its flags only when run as a program
        cli.define_flags()
    from absl import logging

    logging.use_absl_handler()  # as app.run does: the tool's log lines go to its stderr
    handler = logging.get_absl_handler().python_handler
    results = {}
    for name, argv in cases.items():
        flags.FLAGS.unparse_flags()
        sys.argv = [module, *argv]  # what the tool sees as its command line (some print it)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), _stream(handler, err):
            try:
                status = _call(cli, argv)
            except SystemExit as exit_:
                status = exit_.code if isinstance(exit_.code, int) else 1
            except Exception as error:  # noqa: BLE001 - reported as a Python crash would be, so the test fails
                status = 1
                print(f"Traceback (in-process): {type(error).__name__}: {error}", file=sys.stderr)
        results[name] = {"returncode": status, "stdout": out.getvalue(), "stderr": err.getvalue()}
    return results


def run_in_subprocess(module, cases, directory, root, timeout=600):
    """Runs ``cases`` of ``module`` through this script in a new interpreter; returns their results."""
    import os
    import subprocess

    cases_path, results_path = os.path.join(directory, "cases.json"), os.path.join(directory, "results.json")
    with open(cases_path, "w") as f:
        json.dump(cases, f)
    proc = subprocess.run([sys.executable, os.path.join("tests", "cli_cases.py"), module, cases_path, results_path],
                          cwd=root, capture_output=True, text=True, timeout=timeout)
    if proc.returncode:
        raise RuntimeError(f"tests/cli_cases.py failed: {proc.stderr[-3000:]}")
    with open(results_path) as f:
        return json.load(f)


if __name__ == "__main__":
    import os

    sys.path.insert(0, os.getcwd())  # as `python -m` does: the repository's packages (benchmarks/ too) from its root
    with open(sys.argv[2]) as f:
        cases = json.load(f)
    with open(sys.argv[3], "w") as f:
        json.dump(run_cases(sys.argv[1], cases), f)
