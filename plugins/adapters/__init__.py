"""Built-in model adapters; :mod:`tap_plugins.adapters.generic` configures one for other models."""

from tap import hookimpl
from tap_plugins.adapters.flux import FluxAdapter
from tap_plugins.adapters.flux2 import Flux2Adapter
from tap_plugins.adapters.hunyuan_video import HunyuanVideoAdapter
from tap_plugins.adapters.qwen_image import QwenImageAdapter
from tap_plugins.adapters.sd3 import SD3Adapter
from tap_plugins.adapters.wan import WanAdapter

ADAPTERS = (FluxAdapter, Flux2Adapter, HunyuanVideoAdapter, QwenImageAdapter, SD3Adapter, WanAdapter)


@hookimpl
def register_adapters(register):
    for adapter in ADAPTERS:
        register(adapter)
