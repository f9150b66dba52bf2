"""Built-in probes: the first block's modulated input (the paper's) and the first block's output."""

from tap import Probe, ProbeResult, hookimpl


class ModulatedInput(Probe):
    """Modulate(Norm1(x); shift, scale) of the first block: one layer norm and one small linear layer."""

    name = "modulated-input"

    def __call__(self, adapter, call):
        return ProbeResult(adapter.modulated_input(call.block, call.args, call.kwargs))


class FirstBlock(Probe):
    """The whole first block's image output: costlier, but it has seen attention at this step."""

    name = "first-block"
    runs_first_block = True

    def __call__(self, adapter, call):
        output = call()
        return ProbeResult(adapter.probe_output(output), block_output=output)


@hookimpl
def register_probes(register):
    register(ModulatedInput)
    register(FirstBlock)
