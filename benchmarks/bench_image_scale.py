"""Image training above maxBroadcastBytes: staged once, streamed by the task, flat driver memory.

Real MNIST training digits written as photo-like RGB JPEG files (``--side`` pixels, default 224,
in folders of 5,000), read with ``spark.read.format("binaryFile")`` and trained by
``TFClassifier(featuresCol="content", imageSize=[--image-size]*2)`` with the default
``maxBroadcastBytes`` (256 MiB): every size here is above it, so the driver stages the encoded
bytes as Parquet once and the training task streams and decodes them.

Each size runs in a fresh driver process on ``local[2]``, sampled every half second: the
peak resident memory of the driver's Python process, of its JVM (the driver, which in local
mode also hosts the executor), and of the largest Python worker (the training task). The
baseline is the smallest size: driver memory is *flat* when its peak does not grow with the
bytes (ratio of peaks against the ratio of bytes). Test accuracy is on ``--test`` MNIST test
images written the same way, scored by ``transform``.

    python benchmarks/bench_image_scale.py ../shared/data/mnist [--sizes 30000 60000]
        [--side 224] [--image-size 64] [--epochs 1] [--test 2000] [--driver-memory 1g]
        [--work /tmp/sparktf-scale]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import threading
import time

import numpy as np
from _machine import describe

CHUNK = 5_000


def _write_chunk(args: tuple[str, str, str, int, int, int]) -> None:
    """One folder of ``CHUNK`` photo-like JPEG files, one subfolder per digit."""
    import _transfer as tr
    from PIL import Image

    mnist_dir, split, folder, start, count, side = args
    images, labels = tr.mnist(mnist_dir, split)
    rng = np.random.default_rng(start)
    for index in range(start, min(start + count, len(labels))):
        sub = os.path.join(folder, str(int(labels[index])))
        os.makedirs(sub, exist_ok=True)
        photo = tr._photo_like(images[index], side, rng)
        Image.fromarray(photo).save(os.path.join(sub, f"{split}-{index:05d}.jpg"), quality=90)
    open(os.path.join(folder, ".done"), "w").close()


def write_chunks(work: str, mnist_dir: str, split: str, rows: int, side: int) -> list[str]:
    """The folders holding the first ``rows`` images of the split, written once (cached)."""
    from multiprocessing import Pool

    root = os.path.join(work, f"{split}-{side}px")
    jobs = []
    for number, start in enumerate(range(0, rows, CHUNK)):
        folder = os.path.join(root, f"chunk-{number:02d}")
        if not os.path.exists(os.path.join(folder, ".done")):
            jobs.append((mnist_dir, split, folder, start, min(CHUNK, rows - start), side))
    if jobs:
        print(f"writing {len(jobs)} folders of {split} JPEG files under {root}", flush=True)
        with Pool(min(2, os.cpu_count() or 1)) as pool:
            pool.map(_write_chunk, jobs)
    return [os.path.join(root, f"chunk-{n:02d}") for n in range(-(-rows // CHUNK))]


def _tree(root_pid: int) -> dict[int, tuple[str, int]]:
    """Every process below ``root_pid``: its command name and resident bytes."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                parent = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry))
    found: dict[int, tuple[str, int]] = {}
    stack = list(children.get(root_pid, []))
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, []))
        try:
            with open(f"/proc/{pid}/comm") as handle:
                name = handle.read().strip()
            with open(f"/proc/{pid}/statm") as handle:
                rss = int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            continue
        found[pid] = (name, rss)
    return found


class PeakMemory:
    """Samples the driver's own RSS, its JVM's and its largest Python worker's until stopped."""

    def __init__(self) -> None:
        self.peaks = {"driver python": 0, "driver JVM": 0, "largest python worker": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        with open("/proc/self/statm") as handle:
            own = int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        self.peaks["driver python"] = max(self.peaks["driver python"], own)
        for name, rss in _tree(os.getpid()).values():
            key = "driver JVM" if name == "java" else "largest python worker"
            if name == "java" or name.startswith("python"):
                self.peaks[key] = max(self.peaks[key], rss)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self._sample()

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


def _images(spark, folders: list[str]):
    from pyspark.sql import functions as F

    frame = spark.read.format("binaryFile").option("pathGlobFilter", "*.jpg")
    frame = frame.option("recursiveFileLookup", "true").load(folders)
    label = F.regexp_extract("path", r"/(\d)/[^/]+$", 1).cast("double")
    return frame.select("path", "content", label.alias("label"))


class _Staged(logging.Handler):
    """Remembers whether the fit staged its data (sparktf logs it at INFO)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.staged = False

    def emit(self, record: logging.LogRecord) -> None:
        self.staged = self.staged or "staging" in record.getMessage()


def one_size(args) -> dict:
    """Fit on ``args.rows`` training images in this process; the figures as a dict."""
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator

    from sparktf import TFClassifier, get_spark

    train_folders = write_chunks(args.work, args.mnist, "train", args.rows, args.side)
    test_folders = write_chunks(args.work, args.mnist, "test", args.test, args.side)
    with PeakMemory() as memory:
        conf = {"spark.driver.memory": args.driver_memory} if args.driver_memory else None
        spark = get_spark(master="local[2]", conf=conf)
        train = _images(spark, train_folders)
        encoded = train.selectExpr("sum(length(content)) AS b").first()["b"]
        clf = TFClassifier(
            featuresCol="content",
            imageSize=[args.image_size, args.image_size],
            imageScaling="unit",
            convLayers=[16, 32],
            hiddenLayers=[64],
            dropout=0.2,
            epochs=args.epochs,
            batchSize=128,
            learningRate=0.002,
            seed=3,
        )
        staged = _Staged()
        logging.getLogger("sparktf").addHandler(staged)
        logging.getLogger("sparktf").setLevel(logging.INFO)
        start = time.perf_counter()
        model = clf.fit(train)
        fit_seconds = time.perf_counter() - start
        test = _images(spark, test_folders)
        accuracy = MulticlassClassificationEvaluator(metricName="accuracy").evaluate(
            model.transform(test)
        )
    return {
        "rows": args.rows,
        "encoded_bytes": int(encoded),
        "staged": staged.staged,
        "fit_seconds": fit_seconds,
        "images_per_second": args.rows * args.epochs / fit_seconds,
        "test_accuracy": accuracy,
        "test_rows": args.test,
        "peaks": memory.peaks,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mnist", help="folder of the MNIST IDX files")
    parser.add_argument("--sizes", type=int, nargs="+", default=[30_000, 60_000])
    parser.add_argument("--side", type=int, default=224, help="pixels of the written JPEGs")
    parser.add_argument("--image-size", type=int, default=64, help="the imageSize trained at")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--test", type=int, default=2_000, help="test images scored")
    parser.add_argument("--work", default="/tmp/sparktf-scale")
    parser.add_argument(
        "--driver-memory", help="spark.driver.memory (default: sparktf's, half the RAM up to 8g)"
    )
    parser.add_argument("--rows", type=int, help=argparse.SUPPRESS)  # one size, in a child
    args = parser.parse_args()
    if args.rows:
        print("RESULT " + json.dumps(one_size(args)), flush=True)
        return
    print(describe())
    results = []
    for rows in args.sizes:
        command = [sys.executable, *sys.argv, "--rows", str(rows)]
        out = subprocess.run(command, capture_output=True, text=True, check=False)
        lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
        if out.returncode or not lines:
            sys.exit(f"the run of {rows} images failed:\n{out.stderr[-4000:]}")
        results.append(json.loads(lines[-1][len("RESULT ") :]))
        r = results[-1]
        mib = {k: v / 2**20 for k, v in r["peaks"].items()}
        print(
            f"{r['rows']:>7,} images, {r['encoded_bytes'] / 2**20:,.0f} MiB of JPEG, "
            f"{'staged' if r['staged'] else 'broadcast'}: fit "
            f"{r['fit_seconds']:.0f} s ({r['images_per_second']:.0f} images/s), test accuracy "
            f"{r['test_accuracy']:.4f} on {r['test_rows']:,}; peak RSS: driver python "
            f"{mib['driver python']:,.0f} MiB, driver JVM {mib['driver JVM']:,.0f} MiB, "
            f"largest python worker {mib['largest python worker']:,.0f} MiB",
            flush=True,
        )
    base = results[0]
    for r in results[1:]:
        growth = r["encoded_bytes"] / base["encoded_bytes"]
        ratios = ", ".join(
            f"{name} {r['peaks'][name] / base['peaks'][name]:.2f}x" for name in base["peaks"]
        )
        print(f"{r['rows']:,} vs {base['rows']:,} images: bytes {growth:.2f}x; peaks {ratios}")


if __name__ == "__main__":
    main()
