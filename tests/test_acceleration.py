"""The trainer's speed options: bfloat16 mixed precision (the step's convolutions really run in bfloat16,
the losses stay within a stated tolerance of float32's, the model still learns, the test figures are
float32's) and torch.compile (the same losses as eager, the same weight names in the checkpoint)."""
import json

import pytest
import torch
from safetensors.torch import load_file

import genlab
from genlab.errors import UserError
from genlab.models.adversarial.dcgan import DCGAN
from genlab.models.registry import get_model_class
from genlab.training.acceleration import compile_networks
from genlab.training.options import TrainOptions

from conftest import refused

pytestmark = pytest.mark.usefixtures("one_thread")

TINY_PIXELCNN = dict(channels=16, blocks=1, head=16)


def losses(run) -> list[float]:
    return [json.loads(line)["loss"] for line in (run / "steps.jsonl").read_text().splitlines()]


def test_bf16_steps_run_their_convolutions_in_bfloat16_and_match_float32_within_a_percent(tmp_path, monkeypatch):
    seen = []
    real = torch.nn.functional.conv2d

    def spy(x, w, *args, **kwargs):
        out = real(x, w, *args, **kwargs)
        seen.append(out.dtype)
        return out
    monkeypatch.setattr(torch.nn.functional, "conv2d", spy)
    fp32 = genlab.train("pixelcnn", "digits", tmp_path / "fp32", epochs=3, live=False, quiet=True, **TINY_PIXELCNN)
    assert set(seen) == {torch.float32}
    seen.clear()
    bf16 = genlab.train("pixelcnn", "digits", tmp_path / "bf16", epochs=3, live=False, quiet=True,
                        trainer={"precision": "bf16"}, **TINY_PIXELCNN)
    # the training steps' convolutions in bfloat16; the test figures after the epoch in float32
    assert torch.bfloat16 in seen and torch.float32 in seen
    a, b = losses(fp32.path), losses(bf16.path)
    assert len(a) == len(b) > 5
    assert max(abs(x - y) / abs(x) for x, y in zip(a, b)) < 0.01
    assert b[-1] < 0.85 * b[0]                                      # it learns
    assert genlab.load(bf16.path).state_dict()["first.weight"].dtype == torch.float32


def test_compiled_training_gives_the_eager_losses_and_the_same_checkpoint_names(tmp_path):
    settings = dict(latent_dim=2, hidden=16)
    eager = genlab.train("vae", "digits", tmp_path / "eager", epochs=1, batch_size=256, live=False, quiet=True,
                         **settings)
    compiled = genlab.train("vae", "digits", tmp_path / "compiled", epochs=1, batch_size=256, live=False,
                            quiet=True, trainer={"compile": True}, **settings)
    assert losses(compiled.path) == pytest.approx(losses(eager.path), rel=1e-4)
    assert load_file(compiled.path / "model.safetensors").keys() == load_file(eager.path / "model.safetensors").keys()


def test_compile_takes_the_model_forward_or_else_each_network_it_calls():
    from genlab.data.containers.base import DataInfo
    info = DataInfo((1, 8, 8), 10, "binary")
    cls = get_model_class("pixelcnn")
    assert compile_networks(cls(cls.Config(), info)) == ["forward"]
    gan = DCGAN(DCGAN.Config(), DataInfo((1, 8, 8), 10, "continuous"))
    assert compile_networks(gan) == ["generator", "discriminator"]


@pytest.mark.parametrize("field, value", [("precision", "fp16"), ("compile", "yes")])
def test_bad_speed_options_are_one_line(field, value):
    with pytest.raises(UserError, match="--" + field):
        TrainOptions.from_json({field: value})


def test_a_bad_precision_on_the_command_line_is_one_line(capsys):
    refused(capsys, ["train", "vae", "--data", "digits", "--precision", "fp16"], "--precision", "fp16")


def test_the_trainer_fuses_adam_and_the_update_is_the_same_to_round_off():
    from genlab.training.optim import ManagedOptimizer
    torch.manual_seed(0)
    nets = [torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1)) for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    plain = torch.optim.Adam(nets[0].parameters(), lr=1e-2)
    managed = ManagedOptimizer(torch.optim.Adam(nets[1].parameters(), lr=1e-2))
    assert managed.param_groups[0]["fused"] and not plain.param_groups[0]["fused"]
    x = torch.randn(32, 8)
    for _ in range(20):
        for net, opt in zip(nets, (plain, managed)):
            opt.zero_grad()
            net(x).pow(2).mean().backward()
            opt.step()
    for a, b in zip(nets[0].parameters(), nets[1].parameters()):
        assert torch.allclose(a, b, atol=1e-6)


def test_auto_precision_follows_the_hardware_and_is_recorded(tmp_path, capsys):
    from genlab.training.acceleration import choose_precision, native_bf16
    native, what = native_bf16(torch.device("cpu"))
    chosen, why = choose_precision(torch.device("cpu"), "auto")
    assert chosen == ("bf16" if native else "fp32") and why.startswith("auto: ") and what in why
    assert choose_precision(torch.device("cpu"), "fp32") == ("fp32", "asked for")
    run = genlab.train("vae", "digits", tmp_path / "run", epochs=1, samples=0, hidden=16, threads=1)
    assert run.config["train"]["precision"] == chosen         # resolved once: a resume keeps it anywhere
    assert f" in {chosen} (auto: " in capsys.readouterr().err
    if not native:                                            # bf16 on an emulating CPU: kept, and said
        choose_precision(torch.device("cpu"), "bf16")
        assert "emulated" in capsys.readouterr().err


def test_the_machine_is_named_with_its_capability():
    from genlab.training.acceleration import describe_machine, native_bf16
    said = describe_machine()
    assert torch.backends.cpu.get_cpu_capability() in said
    assert ("bfloat16 native" in said) == native_bf16(torch.device("cpu"))[0]
