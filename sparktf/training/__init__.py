"""sparktf's training wing: how a :class:`~sparktf.classification.TFClassifier` fit becomes
Spark tasks that train Keras models. The modules are private and split by side:

* the driver: ``_data`` (check the training data and collect it into compact blocks),
  ``_staging`` (stage data too large to broadcast as files), ``_trials`` (what ``fit`` and
  ``fitMultiple`` run: trials, their data settings and failures), ``_distributed`` (the training
  job: one task per param map, progress, the summary), ``_multiworker`` (one model on several
  tasks: the barrier stage, driver and task side);
* what both sides share: ``_plans`` (the frozen spec and data a task is handed);
* the tasks: ``_training`` (build, train and serialize one model), ``_networks`` (the networks
  it builds), ``_streaming`` (reading staged data as a stream), ``_collective`` (the TensorFlow
  worker process each task of a multi-worker fit starts), ``_warm`` (the process that forks
  those with TensorFlow already imported), ``_process`` (what each of those does for itself).

Nothing here imports a stage; the stages hand these modules their specs and data.
"""
