import os

import pytest
import torch

torch.set_num_threads(1)
os.environ.setdefault("TQDM_DISABLE", "1")


@pytest.fixture
def tiny_cfg():
    from afdm_lib.config import RunConfig

    return RunConfig(dataset="digits-devanagari", train_size=64, val_size=32, test_size=32,
                     epochs=1, batch_size=16, width=0.125, warmup_steps=1,
                     afdm_warmup_steps=1, quiet=True)
