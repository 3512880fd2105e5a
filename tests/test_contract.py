"""Every registered model keeps the contract: built on tiny data of its modality, one finite training step,
samples of the right shape and range, save → load with the same likelihood and the same samples, and a
wrong condition refused with one line. A new model is checked here without a line of this file changing."""
import pytest
import torch

from genlab import modalities
from genlab.errors import UserError
from genlab.models import GenerativeModel, get_model_class, model_names
from genlab.models.base import ABILITIES, CONDITIONS, LIKELIHOODS, make_config
from genlab.models.registry import MODELS

LINES = [f"the {a} {b} sat on the {c}" for a in ("cat", "dog", "bird") for b in ("quietly", "loudly", "once")
         for c in ("mat", "hat", "wall", "floor")]


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    f = tmp_path_factory.mktemp("text") / "lines.txt"
    f.write_text("\n".join(LINES) + "\n")
    return f


@pytest.fixture(scope="module")
def specs(text_file, tmp_path_factory):
    """Tiny data of each modality: its spec and data options."""
    from genlab.data.containers.audio_files import write_wav
    folder = tmp_path_factory.mktemp("sound")
    for k, (label, hz) in enumerate([("low", 300), ("high", 1200)] * 4):      # two classes of short tones
        (folder / label).mkdir(exist_ok=True)
        write_wav(folder / label / f"{k}.wav", 0.5 * torch.sin(torch.arange(64) * (6.2832 * hz / 8000) + k))
    from genlab.data.containers.video import clip_gif
    clips = tmp_path_factory.mktemp("video")
    for k in range(6):                                                         # a dot moving along a row
        frames = torch.zeros(4, 6, 6)
        frames[torch.arange(4), k % 6, (torch.arange(4) + k) % 6] = 1
        clip_gif(clips / f"{k}.gif", frames)
    return {"image": ("digits", {}), "text": (f"text:{text_file}", {}), "audio": (f"audio:{folder}", {"size": 64}),
            "video": (f"video:{clips}", {}),
            "two domains": ("digits+digits", {})}      # the translators': domain A and domain B


def tiny(name, specs):
    """The model, its modality and a batch of its data, as `genlab train` would build them."""
    cls = get_model_class(name)
    modality = modalities.get(cls.modality)
    spec, options = specs["two domains" if cls.conditioning == "image" else cls.modality]
    settings = {"conditional": "true"} if cls.optional_conditioning else {}
    config = make_config(cls.Config, settings)
    ds = modality.load(spec, options)
    info, record = modality.prepare(ds, cls, config, {"spec": spec, **options})
    torch.manual_seed(0)
    model = cls(config, info)
    train, _ = modality.batches(ds, info, record, batch_size=16, seed=0, device="cpu")
    return model, modality, next(iter(train.epoch(0)))


@pytest.mark.parametrize("name", model_names())
def test_declarations_are_true(name):
    cls = get_model_class(name)
    assert cls.name == name and MODELS[name].endswith(":" + cls.__name__)
    assert cls.modality in modalities.MODALITIES
    assert cls.conditioning in CONDITIONS and cls.likelihood_kind in LIKELIHOODS
    assert set(cls.abilities) <= set(ABILITIES)
    for ability in cls.abilities:                                  # a declared ability is a real method
        assert callable(getattr(cls, ability, None)), f"{name} declares {ability} but has no such method"
    assert not cls.has_iwae or callable(getattr(cls, "iwae_nll", None))
    assert cls.trains_by_epoch == (cls.train_epoch is not GenerativeModel.train_epoch)
    # a model that steps writes its loss (the base class steps) or, with several optimisers, its own step
    assert cls.trains_by_epoch or cls.loss is not GenerativeModel.loss or cls.train_step is not GenerativeModel.train_step


@pytest.mark.parametrize("name", model_names())
def test_every_model_keeps_the_contract(name, specs, tmp_path):
    model, modality, batch = tiny(name, specs)
    model.train()
    if model.trains_by_epoch:
        class OneBatch:
            def epoch(self, e=0):
                yield batch
        logs = model.train_epoch(OneBatch(), 0)
    else:
        logs = model.train_step(batch, model.configure_optimizers(1e-3))
    assert logs and all(torch.isfinite(torch.tensor(float(v))) for v in logs.values()), logs
    model.eval()

    # Samples of the right kind, shape and range.
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    how = {"condition": batch.x[:4]} if model.condition_kind == "image" else {}     # a translator's images
    drawn = modality.draw(model, 4, g(), **how)
    if model.modality == "image":
        assert drawn.shape == (4, *model.info.shape)
        assert float(drawn.min()) >= 0 and float(drawn.max()) <= 1
    elif model.modality == "audio":
        assert drawn.shape == (4, model.info.length) and float(drawn.abs().max()) <= 1
    elif model.modality == "video":
        info = model.info
        assert drawn.shape == (4, info.frames, info.height, info.width) and set(drawn.unique().tolist()) <= {0, 1}
    else:
        assert len(drawn) == 4 and all(isinstance(line, str) for line in drawn)

    # Save → load: the same weights, the same likelihood, the same samples for the same seed.
    model.save_pretrained(tmp_path / "saved")
    again = GenerativeModel.from_pretrained(tmp_path / "saved")
    assert type(again) is type(model) and again.config == model.config
    for k, v in model.state_dict().items():
        assert torch.equal(v, again.state_dict()[k]), k
    if model.likelihood_kind != "none":
        condition = batch.condition if model.condition_kind != "none" else None
        torch.manual_seed(5)
        a = model.eval_terms(batch.x, condition, iwae_k=0)
        torch.manual_seed(5)
        b = again.eval_terms(batch.x, condition, iwae_k=0)
        assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k]) for k in a)
    assert _same(modality.draw(model, 4, g(), **how), modality.draw(again, 4, g(), **how))


def _same(a, b) -> bool:
    return torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b


@pytest.mark.parametrize("name", model_names())
def test_a_wrong_condition_is_one_line(name, specs):
    model, _, _ = tiny(name, specs)
    model.eval()
    if model.condition_kind == "none":
        wrong = torch.tensor([0, 1])                                # a class for a model that takes none
    else:
        wrong = torch.tensor([0, model.num_conditions + 5])         # a class it does not have
    with pytest.raises(UserError):
        model.sample(2, condition=wrong, generator=torch.Generator().manual_seed(0))
