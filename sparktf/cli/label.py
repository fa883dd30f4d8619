"""``sparktf label``: label a folder or glob of images (or a Parquet file of image bytes) with a
trained model and write the top-K labels per image."""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import time
from collections.abc import Iterator
from typing import Any

from sparktf.cli._args import check_spark_options, image_size, require_path, start_spark
from sparktf.cli._console import EXIT_OK, Console, UsageError, error_message
from sparktf.cli._label_scores import MODEL_OUTPUTS, applies_softmax, with_softmax
from sparktf.cli._options import add_command, count_option, option, output_option, switch

_IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "gif", "bmp", "tif", "tiff", "webp")


def flat_input_shape(path: str) -> tuple | None:
    """The input shape of the Keras file at ``path`` when it takes flat vectors (``[None, n]``),
    else None (not a Keras file, unreadable, or another input)."""
    if not (os.path.isfile(path) and path.endswith((".keras", ".h5"))):
        return None
    try:
        from sparktf._loading import load_keras_file

        shape = load_keras_file(path).input_shape
    except Exception:
        return None
    if (
        isinstance(shape, tuple)
        and len(shape) == 2
        and all(d is None or isinstance(d, int) for d in shape)
    ):
        return shape
    return None


_SUMMARY = "label images with a trained model; write the top-K labels per image"
_DESCRIPTION = (
    "Label images with a TensorFlow model through TFGraphTransformer: the model is read once on "
    "the driver, broadcast, and applied in batches. IMAGES is a folder, a glob (quote it: "
    "'photos/*.jpg') or, with --image-col, a Parquet dataset of image bytes."
)

#: IMAGES and the options; the choices of --model-format, --image-scaling and --channel-order
#: are given when the parser is built (see :func:`add_parser`).
_OPTIONS = (
    option("images", help="folder, glob or (with --image-col) Parquet path"),
    option(
        "--model",
        required=True,
        metavar="PATH",
        help="SavedModel folder, Keras file (.keras, .h5) or frozen GraphDef (.pb)",
    ),
    option("--model-format", default="auto", help="model format; auto detects it from the path"),
    option(
        "--labels", required=True, metavar="FILE", help="text file with one class name per line"
    ),
    count_option("--top-k", 5, help="labels kept per image"),
    option(
        "--model-output",
        choices=MODEL_OUTPUTS,
        default="auto",
        help="what the model outputs: logits are shown as their softmax (probabilities); auto: "
        "logits for a network sparktf trained (best_model.keras) whose output is not a "
        "softmax, else the output as it is",
    ),
    option("--input-tensor", metavar="NAME", help="GraphDef: input tensor fed the encoded images"),
    option("--output-tensor", metavar="NAME", help="GraphDef: output tensor holding the scores"),
    option("--signature", default="serving_default", metavar="NAME", help="SavedModel signature"),
    option(
        "--image-size",
        type=image_size,
        default=None,
        metavar="H,W",
        help="size images are resized to (default: the model input's size)",
    ),
    option(
        "--image-scaling",
        default="unit",
        help="pixel scaling the model expects: none (0..255), unit ([0, 1]), signed ([-1, 1])",
    ),
    option("--channel-order", default="rgb", help="channel order"),
    switch(
        "--full-decode",
        help="decode JPEGs at full size before resizing (the same pixels as a full decode, "
        "slower); by default a JPEG is decoded at the smallest 1/2, 1/4 or 1/8 scale still "
        "covering the image size",
    ),
    switch(
        "--freeze",
        help="run a Keras model as a frozen graph (freezeModel): faster per batch, for a "
        "one-time cost per Python worker; for large image sets",
    ),
    count_option("--batch-size", 64, help="images per TF call"),
    option(
        "--image-col",
        default=None,
        metavar="COL",
        help="read IMAGES as Parquet and take the encoded image bytes from this column",
    ),
    option(
        "--path-col",
        default="path",
        metavar="COL",
        help="column naming each image in the output (with --image-col; ignored if absent)",
    ),
    switch("--recursive", help="also read images in sub-folders of a folder"),
    switch(
        "--by-path",
        help="the Python workers read the image files themselves, so no bytes pass through "
        "the JVM: faster on large photos. Every worker must be able to open the same paths "
        "(a local or shared folder, or a file system TensorFlow reads, such as gs://); not "
        "with --image-col or a frozen GraphDef",
    ),
    switch("--skip-invalid", help="drop images that cannot be read or decoded instead of failing"),
    output_option("sparktf-labels", "output folder (Parquet or CSV)"),
    option(
        "--format",
        choices=("parquet", "csv"),
        default="parquet",
        help="output format; csv flattens the top-K labels to 'label:score;...' strings",
    ),
    switch("--overwrite", help="replace --output if it already exists"),
    option("--show", type=int, default=10, metavar="N", help="rows of the sample printed"),
)


def add_parser(commands: Any) -> None:
    """Add ``label`` and its options to the sub-parsers ``commands``."""
    # the choices come from modules that import numpy: read them only when the parser is built
    from sparktf.image import SCALINGS
    from sparktf.inference._plan import CHANNEL_ORDERS, MODEL_FORMATS

    choices = {
        "--model-format": MODEL_FORMATS,
        "--image-scaling": SCALINGS,
        "--channel-order": CHANNEL_ORDERS,
    }
    add_command(commands, "label", _SUMMARY, _DESCRIPTION, _OPTIONS, choices=choices)


def _is_glob(path: str) -> bool:
    return any(ch in path for ch in "*?[")


def check_images_path(path: str) -> None:
    """Refuse a local ``path`` of images that does not exist, or a glob no file matches (a URL
    such as ``hdfs://...`` is left to Spark)."""
    if "://" in path:
        return
    if _is_glob(path):
        if not glob.glob(path):
            raise UsageError(f"no file matches {path}")
    elif not os.path.exists(path):
        raise UsageError(f"no such file or folder: {path}")


def read_images(spark: Any, path: str, recursive: bool = False) -> Any:
    """A ``binaryFile`` DataFrame (path, modificationTime, length, content) of the images at
    ``path``: a folder (files with an image extension) or a glob."""
    check_images_path(path)
    reader = spark.read.format("binaryFile")
    if _is_glob(path):
        return reader.load(path)
    if os.path.isdir(path) or "://" in path:
        patterns = ",".join(e for ext in _IMAGE_EXTENSIONS for e in (ext, ext.upper()))
        reader = reader.option("pathGlobFilter", "*.{" + patterns + "}")
        if recursive:
            reader = reader.option("recursiveFileLookup", "true")
    return reader.load(path)


def top_k_pretty(entries: Any, n: int = 3) -> str:
    return ", ".join(f"{e['label']} ({e['score']:.3f})" for e in (entries or [])[:n])


def _require_tensor_names(args: argparse.Namespace) -> None:
    if not (args.input_tensor and args.output_tensor):
        raise UsageError("a frozen GraphDef needs --input-tensor and --output-tensor")


#: Spark packs files into a task as if each cost ``spark.sql.files.openCostInBytes`` (4 MiB by
#: default) more than its size: 256 JPEGs of 20 KiB made 8 tasks on 2 cores, whose fixed costs
#: showed. ``label`` reads images as if each cost this much instead, unless the session sets it.
_OPEN_COST_KEY = "spark.sql.files.openCostInBytes"
_OPEN_COST = "8192"


@contextlib.contextmanager
def small_file_packing(spark: Any) -> Iterator[None]:
    """Within the block, ``spark`` packs image files into tasks by their size (see
    :data:`_OPEN_COST`), unless the session sets the cost already (``--conf``,
    spark-defaults.conf, a Connect server's settings); the session is left as it was after, and
    a server that refuses the setting keeps its own."""
    if spark.conf.get(_OPEN_COST_KEY, None) is not None:
        yield
        return
    try:
        spark.conf.set(_OPEN_COST_KEY, _OPEN_COST)
    except Exception:  # e.g. a Connect server that allows only some settings
        yield
        return
    try:
        yield
    finally:
        with contextlib.suppress(Exception):  # an error of the block matters more
            spark.conf.unset(_OPEN_COST_KEY)


def run(args: argparse.Namespace, console: Console) -> int:
    """``sparktf label``."""
    graphdef = _check_arguments(args)
    spark = start_spark(args, console)
    with small_file_packing(spark):
        return _label(spark, args, console, graphdef)


def _label(spark: Any, args: argparse.Namespace, console: Console, graphdef: bool) -> int:
    df, image_col, path_col = _read_input(spark, args)
    count = df.count()
    if count == 0:
        raise UsageError(f"no images found at {args.images}")
    console.step(f"Labelling {count} images with {args.model}")
    stage = _labeller(args, graphdef, image_col, path_col)
    try:
        labelled = stage.transform(df)
    except TypeError:
        flat = None if graphdef or args.image_col else flat_input_shape(args.model)
        if flat is None:
            raise
        raise UsageError(
            f"--model {args.model} takes flat feature vectors (input shape {list(flat)}), not "
            "images: it is a classifier's network, like the best_model.keras 'sparktf tune' "
            "writes. Label images with a model whose input is an image [height, width, "
            "channels], e.g. the digits_image_model.keras that 'sparktf demo' writes."
        ) from None
    result = labelled.select(*[c for c in (path_col,) if c], "scores", "topK")
    if applies_softmax(spark, args.model, args.model_format, args.model_output):
        console.step("Scores: the softmax of the model's logits (probabilities)")
        result = with_softmax(result)
    start = time.time()
    try:
        _write(result, args, path_col)
    except Exception as exc:
        raise _with_option_hint(exc) from exc
    written = _read_output(spark, args)
    labelled_count = written.count()
    console.step(f"Labelled and wrote {labelled_count} rows in {time.time() - start:.1f}s")
    if labelled_count == 0:
        raise RuntimeError(
            f"none of the {count} images could be read or decoded (--skip-invalid dropped "
            "them all); run without --skip-invalid to see the first one's error"
        )
    console.out(f"Wrote {labelled_count} rows to {args.output} ({args.format})")
    if labelled_count < count:
        console.out(f"Skipped {count - labelled_count} images that could not be read or decoded")
    # the CSV holds the labels as text: a sample of it is labelled again
    sample = written if args.format == "parquet" else result
    _print_sample(console, sample.limit(max(args.show, 0)).collect(), args.top_k, path_col)
    return EXIT_OK


def _read_output(spark: Any, args: argparse.Namespace) -> Any:
    if args.format == "parquet":
        return spark.read.parquet(args.output)
    return spark.read.option("header", "true").csv(args.output)


def _print_sample(console: Console, rows: list, top_k: int, path_col: str | None) -> None:
    if rows:
        console.out(f"Sample (top {min(top_k, 3)} of {top_k} labels):")
        for row in rows:
            name = row[path_col] if path_col else "-"
            console.out(f"  {name}: {top_k_pretty(row['topK'])}")


def _with_option_hint(exc: Exception) -> Exception:
    """``exc``, or for an image that could not be read or decoded, an error with the same
    message ending in the command's option rather than the transformer's Param."""
    from sparktf.inference._plan import TransformPlan

    message = error_message(exc)
    if TransformPlan.invalid_hint not in message:
        return exc
    hint = "Add --skip-invalid to drop such images."
    return RuntimeError(message.replace(TransformPlan.invalid_hint, hint))


def _check_arguments(args: argparse.Namespace) -> bool:
    """Check the arguments before Spark starts; return whether the model is a GraphDef."""
    # 1. the syntax of every argument, and the rules between them
    check_spark_options(args)
    if args.model_format == "graphdef":
        _require_tensor_names(args)
    # 2. the paths and folders
    require_path(args.model, "--model")
    require_path(args.labels, "--labels")
    graphdef = args.model_format == "graphdef" or (
        args.model_format == "auto" and os.path.isfile(args.model) and args.model.endswith(".pb")
    )
    if graphdef:
        _require_tensor_names(args)
    if args.by_path and args.images.lower().startswith(("s3:", "s3a:", "s3n:")):
        raise UsageError(
            "--by-path: the Python workers open the files through TensorFlow, which reads no "
            "S3 paths; drop --by-path to read them through Spark"
        )
    if args.by_path and (graphdef or args.image_col):
        raise UsageError(
            "--by-path feeds the image files' paths to a model that takes pixels; "
            + (
                "a frozen GraphDef is fed the encoded bytes (drop --by-path)"
                if graphdef
                else "with --image-col the images are bytes in a Parquet column (drop --by-path)"
            )
        )
    if not args.image_col:
        check_images_path(args.images)
    elif "://" not in args.images:
        require_path(args.images, "IMAGES")
    if os.path.exists(args.output) and not args.overwrite:
        raise UsageError(f"--output {args.output} already exists (add --overwrite to replace it)")
    return graphdef


def _read_input(spark: Any, args: argparse.Namespace) -> tuple[Any, str, str | None]:
    """The images' DataFrame, its image column and its path column (None when it has none)."""
    if not args.image_col:
        images = read_images(spark, args.images, args.recursive)
        if args.by_path:  # the workers read the files: Spark only lists them
            return images.select("path"), "path", "path"
        return images, "content", "path"
    df = spark.read.parquet(args.images)
    if args.image_col not in df.columns:
        raise UsageError(
            f"--image-col {args.image_col!r} is not a column of {args.images}; the columns "
            f"are {df.columns}"
        )
    return df, args.image_col, args.path_col if args.path_col in df.columns else None


def _labeller(args: argparse.Namespace, graphdef: bool, image_col: str, path_col: str | None):
    """The TFGraphTransformer the arguments describe."""
    from sparktf.transformer import TFGraphTransformer

    params: dict[str, Any] = {
        "modelPath": args.model,
        "modelFormat": args.model_format,
        "signatureName": args.signature,
        "labelsPath": args.labels,
        "topK": args.top_k,
        "topKCol": "topK",
        "imageScaling": args.image_scaling,
        "channelOrder": args.channel_order,
        "scaledDecode": not args.full_decode,
        "freezeModel": args.freeze,
        "batchSize": args.batch_size,
        "handleInvalid": "skip" if args.skip_invalid else "error",
        "pathCol": path_col or "",
    }
    if args.image_size:
        params["imageSize"] = args.image_size
    if graphdef:
        params["inputMapping"] = {image_col: args.input_tensor}
        params["outputMapping"] = {args.output_tensor: "scores"}
    else:
        params["inputCol"] = image_col
        params["outputCol"] = "scores"
    return TFGraphTransformer(**params)


def _write(result: Any, args: argparse.Namespace, path_col: str | None) -> None:
    """Write the labels as Parquet, or as CSV with the top-K pairs as ``label:score;...``."""
    if args.format != "csv":
        result.write.mode("overwrite").parquet(args.output)
        return
    from pyspark.sql import functions as F

    pairs = F.transform(
        "topK", lambda e: F.concat(e["label"], F.lit(":"), F.format_number(e["score"], 4))
    )
    csv = result.select(*[c for c in (path_col,) if c], F.concat_ws(";", pairs).alias("topK"))
    csv.write.mode("overwrite").option("header", "true").csv(args.output)
