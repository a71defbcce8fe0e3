"""Runs many `python -m akd_tf.main` argument lists in one interpreter (one TensorFlow start instead of one per
case; ~7 s each on 2 cores). Each case goes through the CLI's own flag parser and `main`, with the flags reset
in between, and reports its exit status, stdout and stderr.

    python tests/cli_cases.py cases.json results.json      # cases: {name: [argv...]}
"""

import contextlib
import io
import json
import sys


def run_cases(cases):
    from absl import flags

    from akd_tf import main as cli

    results = {}
    for name, argv in cases.items():
        flags.FLAGS.unparse_flags()
        out, err = io.StringIO(), io.StringIO()
        status = 0
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                cli.main(cli.parse_flags([cli.PROG, *argv]))
            except SystemExit as exit_:
                status = exit_.code if isinstance(exit_.code, int) else 1
            except Exception as error:  # noqa: BLE001 - reported as a Python crash would be, so the test fails
                status = 1
                print(f"Traceback (in-process): {type(error).__name__}: {error}", file=sys.stderr)
        results[name] = {"returncode": status, "stdout": out.getvalue(), "stderr": err.getvalue()}
    return results


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    with open(sys.argv[2], "w") as f:
        json.dump(run_cases(cases), f)
