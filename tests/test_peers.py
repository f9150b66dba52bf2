"""cache-dit's calibrators as tap bench peers: each variant runs on the demo pipeline and is removed after."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tap_plugins.demo import load_demo_pipeline
from tap.cli.peers import CACHE_DIT_CALIBRATORS, cache_dit_available, cache_dit_methods

pytestmark = pytest.mark.skipif(not cache_dit_available(), reason="cache-dit is not installed: pip install -e '.[peers]'")


def test_every_cache_dit_calibrator_runs_and_is_removed():
    demo_pipe = load_demo_pipeline()
    blocks = [*demo_pipe.transformer.transformer_blocks, *demo_pipe.transformer.single_transformer_blocks]
    methods = cache_dit_methods(blocks, 6, [0.2])
    assert [m.name for m in methods] == ["cache-dit-dbcache", *(f"cache-dit-dbcache-{c}" for c in CACHE_DIT_CALIBRATORS)]
    run = lambda: demo_pipe("A", num_inference_steps=6, generator=torch.Generator().manual_seed(0), output_type="np").images[0]
    plain = run()
    for method in methods:
        with method.apply(demo_pipe):
            image = run()
        assert np.isfinite(image).all() and image.shape == plain.shape, method.name
    np.testing.assert_array_equal(run(), plain)
