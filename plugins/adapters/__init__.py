"""Built-in model adapters; :mod:`tap_plugins.adapters.generic` configures one for other models.

One module per family of diffusers transformers, each listing its adapters in ``ADAPTERS``.
"""

from tap import hookimpl
from tap_plugins.adapters import basic_family, dual_stream, flux_family, joint_sequence, multi_stream, wan_family
from tap_plugins.adapters.flux import FluxAdapter
from tap_plugins.adapters.flux2 import Flux2Adapter
from tap_plugins.adapters.hunyuan_video import HunyuanVideoAdapter
from tap_plugins.adapters.qwen_image import QwenImageAdapter
from tap_plugins.adapters.sd3 import SD3Adapter
from tap_plugins.adapters.wan import WanAdapter

FAMILIES = (basic_family, dual_stream, flux_family, joint_sequence, multi_stream, wan_family)
ADAPTERS = (
    FluxAdapter, Flux2Adapter, HunyuanVideoAdapter, QwenImageAdapter, SD3Adapter, WanAdapter,
    *(adapter for family in FAMILIES for adapter in family.ADAPTERS),
)


@hookimpl
def register_adapters(register):
    for adapter in ADAPTERS:
        register(adapter)
