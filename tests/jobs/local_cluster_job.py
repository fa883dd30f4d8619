"""Every job the suite runs on ``local-cluster[2,1,1024]``, on one cluster start, in a driver
process of its own.

Two executor JVMs with one core each, each with its own Python daemon: starting them and
importing TensorFlow in their workers is most of what a job there costs, so the jobs that need the
same cluster share one. In order, each a step that reports without hiding the others:

1. ``workers``: tests/jobs/workers_job.py's steps but its kill (one model on two tasks);
2. ``cluster``: tests/jobs/cluster_job.py's cross-validated grid and its deployment;
3. the faults last, as they kill processes: the killed multi-worker fit (``workers.killed``),
   then tests/jobs/fault_job.py's Python workers killed in a grid and in a transform (``fault``).

Used by tests/training/test_workers.py and tests/spark/test_cluster.py through one session-wide
fixture (``local_cluster_run`` in tests/conftest.py). The small-heap staged run
(``local-cluster[2,1,512]``) stays a job of its own. Prints one JSON line (``RESULT {...}``).
"""

from __future__ import annotations

import json
import shutil
import sys
import time


def main(master: str) -> None:
    import cluster_job
    import fault_job
    from connect_job import _step
    from pyspark import cloudpickle
    from workers_job import STEPS, run, scratch_conf

    from sparktf.session import get_spark

    # the executors cannot import the job scripts: functions of theirs that run in a task are
    # shipped by value, as those of a script run as __main__ are
    cloudpickle.register_pickle_by_value(cluster_job)
    cloudpickle.register_pickle_by_value(fault_job)

    scratch, conf = scratch_conf()
    spark = get_spark(master=master, app_name="sparktf-local-cluster-test", conf=conf)
    results: dict = {}
    seconds: dict = {}

    def step(name: str, fn) -> None:
        start = time.time()
        _step(results, name, fn)
        seconds[name] = round(time.time() - start, 1)

    try:
        kill = "killed"
        step("workers", lambda: run(spark, scratch, [s for s in STEPS if s != kill]))
        step("cluster", lambda: cluster_job.grid_and_deploy(spark))
        step("killed", lambda: run(spark, scratch, [kill])[kill])
        if "error" not in results["workers"]:
            results["workers"][kill] = results.pop("killed")
        step("fault", lambda: fault_job.faults(spark))
        results["seconds"] = seconds
        print("RESULT " + json.dumps(results, default=str), flush=True)
    finally:
        spark.stop()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "local-cluster[2,1,1024]")
