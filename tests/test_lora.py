"""LoRA adapters (diffusers' PEFT integration) loaded, fused, unfused or switched while tap is enabled."""

import peft
import pytest
import torch
from peft.utils import get_peft_model_state_dict

import tap

from conftest import sample_flux, tiny_flux


pytestmark = pytest.mark.filterwarnings("ignore:Already found a `peft_config`:UserWarning")  # a second adapter

TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
SEEDS = {"a": 1, "b": 2, "c": 3}


def add(model, name: str) -> None:
    """Add a random non-zero LoRA adapter whose weights depend only on its name."""
    torch.manual_seed(SEEDS[name])
    config = peft.LoraConfig(r=4, lora_alpha=4, target_modules=TARGETS, init_lora_weights=False)
    model.add_adapter(config, adapter_name=name)


def lora_state_dict(name: str) -> dict:
    """The PEFT state dict of adapter ``name`` made on a separate tiny FLUX."""
    source = tiny_flux()
    add(source, name)
    return {k: v.clone() for k, v in get_peft_model_state_dict(source, adapter_name=name).items()}


def op_add(model):
    add(model, "a")


def op_two_weighted(model):
    add(model, "a"), add(model, "b")
    model.set_adapters(["a", "b"], weights=[0.5, 1.5])


def op_switch(model):
    add(model, "a"), add(model, "b")
    model.set_adapter("b")


def op_fuse(model):
    add(model, "a")
    model.fuse_lora()


def op_fuse_unfuse(model):
    add(model, "a")
    model.fuse_lora()
    model.unfuse_lora()


def op_disable(model):
    add(model, "a")
    model.disable_adapters()


def op_disable_enable(model):
    add(model, "a")
    model.disable_adapters()
    model.enable_adapters()


def op_delete(model):
    add(model, "a"), add(model, "b")
    model.set_adapters(["a", "b"])
    model.delete_adapters("a")


def op_load(model):
    model.load_lora_adapter(lora_state_dict("c"), prefix=None, adapter_name="c")


# operation, whether the resulting LoRA state changes the output of the base model
OPERATIONS = {
    "add": (op_add, True), "two-weighted": (op_two_weighted, True), "switch": (op_switch, True),
    "fuse": (op_fuse, True), "fuse-unfuse": (op_fuse_unfuse, True), "disable": (op_disable, False),
    "disable-enable": (op_disable_enable, True), "delete": (op_delete, True), "load": (op_load, True),
}


def plain(op) -> torch.Tensor:
    """Final latents of plain diffusers (no tap) on a fresh tiny FLUX after ``op``."""
    model = tiny_flux()
    op(model)
    return sample_flux(model, steps=6)[0]


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("name", list(OPERATIONS))
def test_lora_operation_interval_1_bit_identical(flux, name, when):
    """At interval 1, tap after a LoRA operation (done before or after enabling) equals plain diffusers."""
    op, changes = OPERATIONS[name]
    if when == "before":
        op(flux)
        tap.enable(flux, interval=1)
    else:
        tap.enable(flux, interval=1)
        sample_flux(flux, steps=6)  # a generation with tap before the LoRA change
        op(flux)
    accelerated = sample_flux(flux, steps=6)[0]
    assert (tap.stats(flux).steps, tap.stats(flux).predicted_steps) == (6, 0)  # tap saw every step
    expected = plain(op)
    assert torch.equal(accelerated, expected)
    base = sample_flux(tiny_flux(), steps=6)[0]
    assert torch.equal(expected, base) != changes  # the LoRA state matters (or, disabled, does not)
    tap.disable(flux)
    assert torch.equal(sample_flux(flux, steps=6)[0], expected)  # same model without tap


def test_loaded_lora_matches_its_source(flux):
    """A LoRA saved with get_peft_model_state_dict and loaded under tap reproduces the source model."""
    source = tiny_flux()
    add(source, "c")
    tap.enable(flux, interval=1)
    flux.load_lora_adapter(get_peft_model_state_dict(source, adapter_name="c"), prefix=None, adapter_name="c")
    assert torch.equal(sample_flux(flux, steps=6)[0], sample_flux(source, steps=6)[0])


def test_switching_adapters_interval_3(flux):
    """At interval 3 tap stays active across adapter switches and each adapter's output is its own."""
    add(flux, "a"), add(flux, "b")
    tap.enable(flux, interval=3)
    flux.set_adapter("a")
    with_a = sample_flux(flux, steps=6)[0]
    assert tap.stats(flux).predicted_steps > 0
    flux.set_adapter("b")
    with_b = sample_flux(flux, steps=6)[0]
    assert tap.stats(flux).predicted_steps > 0
    assert not torch.allclose(with_a, with_b, atol=1e-4)

    def fresh(name):
        model = tiny_flux()
        add(model, name)
        with tap.accelerate(model, interval=3):
            return sample_flux(model, steps=6)[0]

    torch.testing.assert_close(with_b, fresh("b"), atol=1e-6, rtol=0)
    torch.testing.assert_close(with_a, fresh("a"), atol=1e-6, rtol=0)
