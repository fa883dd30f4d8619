"""sparktf's inference engine: the one path by which both stages apply a model to DataFrames.

:class:`~sparktf.transformer.TFGraphTransformer` and
:class:`~sparktf.classification.TFClassificationModel` plan a transform the same way and run
the same worker code; the modules are private and split by side:

* driver: ``_driver`` (check the Params, read and ship the model, build the plan), ``_columns``
  (columns against tensors), ``_outline`` (the model's tensors, learned on the driver or in the
  workers), ``_model_files`` (reading a model path on the driver);
* the plan both sides share: ``_plan`` (frozen data, pickled into the UDF);
* the UDF: ``_udf`` (the pandas UDF, its arguments and output columns);
* executors: ``_worker`` (batches through the model) and ``_rows`` (columns into arrays).
"""
