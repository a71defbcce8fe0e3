"""A file of your own labelled sentences, for trying the own-text pipeline (docs/own-data.md) without one:

    TFDS_DATA_DIR=../shared/tensorflow_datasets python examples/own_text.py --output=runs/reviews.csv --rows=2000

writes ``<output>``, a UTF-8 CSV with the columns ``text`` and ``label`` (``negative``/``positive``): the first
``rows`` movie-review sentences of GLUE SST-2's training split, real text as your own file would hold it. Any CSV or
TSV with those columns (and optionally ``text_b``, ``split``) runs the same way: ``--dataset=csv:FILE``.
"""

import argparse
import csv
import os

NAMES = ("negative", "positive")  # SST-2's label ids 0 and 1


def write_csv(path, rows=2000, data_dir=None):
    import tensorflow_datasets as tfds

    data = tfds.load("glue/sst2", split=f"train[:{rows}]", data_dir=data_dir or os.environ.get("TFDS_DATA_DIR"),
                     batch_size=-1, download=False)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for sentence, label in zip(data["sentence"].numpy(), data["label"].numpy()):
            writer.writerow([sentence.decode("utf-8").strip(), NAMES[int(label)]])
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", required=True, help="the CSV file to write")
    parser.add_argument("--rows", type=int, default=2000, help="sentences to write (default 2000)")
    args = parser.parse_args()
    print(f"wrote {write_csv(args.output, args.rows)} ({args.rows} rows)")


if __name__ == "__main__":
    main()
