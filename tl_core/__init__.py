"""tl_core: guided transfer learning for image classifiers (no UI; the app and the CLI call it).

Entry points: ``python -m tl_core`` (see ``tl_core.cli``), ``tl_core.train.train_run``,
``tl_core.predict.Predictor``, ``tl_core.backbones.get_backbone`` / ``list_backbones`` and
``tl_core.freezing.advise``. Importing this package imports nothing heavy.
"""
