#!/usr/bin/env bash
# Start or stop a Spark standalone cluster on loopback: one master and two workers (1 core each),
# launched with the spark-class script shipped inside the pyspark package.
#   .ci/standalone-cluster.sh start PYTHON STATE_DIR   prints the master URL
#   .ci/standalone-cluster.sh stop STATE_DIR
# The PID of every daemon started is recorded in STATE_DIR/*.pid; stop ends those processes and
# the processes they started (executors, Python workers), and nothing else.
set -euo pipefail

# The PIDs of a process's descendants, deepest first.
descendants() {
  local child
  for child in $(pgrep -P "$1" 2>/dev/null || true); do
    descendants "$child"
    echo "$child"
  done
}

cmd=${1:?start|stop}
if [ "$cmd" = start ]; then
  python=${2:?python}
  state=${3:?state dir}
  mkdir -p "$state"
  spark_home=$("$python" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')
  port=${SPARKTF_MASTER_PORT:-7077}
  master="spark://127.0.0.1:$port"
  export SPARK_HOME="$spark_home" SPARK_LOCAL_IP=127.0.0.1 PYSPARK_PYTHON="$python"
  export SPARK_LOG_DIR="$state/logs" SPARK_WORKER_DIR="$state/work"
  mkdir -p "$SPARK_LOG_DIR" "$SPARK_WORKER_DIR"
  nohup "$spark_home/bin/spark-class" org.apache.spark.deploy.master.Master \
    --host 127.0.0.1 --port "$port" --webui-port 0 >"$state/logs/master.log" 2>&1 &
  echo $! >"$state/master.pid"
  for i in 1 2; do
    nohup "$spark_home/bin/spark-class" org.apache.spark.deploy.worker.Worker \
      --host 127.0.0.1 --cores 1 --memory 2g --webui-port 0 --work-dir "$state/work/$i" \
      "$master" >"$state/logs/worker$i.log" 2>&1 &
    echo $! >"$state/worker$i.pid"
  done
  # Wait until both workers have registered with the master.
  for _ in $(seq 1 90); do
    registered=$(grep -l "Successfully registered with master" "$state"/logs/worker*.log \
      2>/dev/null | wc -l || true)
    if [ "${registered:-0}" -ge 2 ]; then
      echo "$master"
      exit 0
    fi
    sleep 1
  done
  echo "standalone cluster did not come up; logs in $state/logs" >&2
  tail -n 20 "$state"/logs/*.log >&2 || true
  exit 1
elif [ "$cmd" = stop ]; then
  state=${2:?state dir}
  pids=()
  for pidfile in "$state"/worker*.pid "$state"/master.pid; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    rm -f "$pidfile"
    # Only a process still running the daemon recorded there (the PID may have been reused).
    if ! grep -qa "org.apache.spark.deploy" "/proc/$pid/cmdline" 2>/dev/null; then
      continue
    fi
    # spark-class execs java; a worker's executors and their Python workers are its descendants.
    pids+=($(descendants "$pid") "$pid")
  done
  [ ${#pids[@]} -gt 0 ] || exit 0
  kill "${pids[@]}" 2>/dev/null || true
  for _ in $(seq 1 20); do
    alive=()
    for pid in "${pids[@]}"; do
      kill -0 "$pid" 2>/dev/null && alive+=("$pid")
    done
    [ ${#alive[@]} -gt 0 ] || exit 0
    sleep 0.5
  done
  kill -9 "${alive[@]}" 2>/dev/null || true
else
  echo "usage: $0 start PYTHON STATE_DIR | stop STATE_DIR" >&2
  exit 2
fi
