"""The one home of the defaults that several commands share (``cnnlab data``, ``train``, ``evaluate``).

``cnnlab data`` previews the split ``cnnlab train`` will use only if both read the same numbers, so
``load_data``, ``inspect_data``, ``TrainConfig`` and every CLI option take their defaults from here.
Plain constants: importing this module imports nothing else (the CLI reads it while building parsers).
"""

from __future__ import annotations

VAL_SPLIT = 0.1  # fraction of the training images held out for validation when a source has no val split
TEST_SPLIT = 0.0  # fraction drawn as a test split when a source has none
SEED = 0  # seed of the stratified split (and of training)
RESIZE = "crop"  # how images of another size are fitted: crop, stretch or pad
EVAL_BATCH_SIZE = 256  # images per forward pass when evaluating (validation, evaluate, reports)
