"""The pieces several models share, checked against independent computations: the Gaussian KL term, the
IWAE bound, and the choice between a fully connected and a convolutional net."""
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from genlab.models.adversarial.base import NetConfig as AdversarialNetConfig
from genlab.models.latent.gaussian import gaussian_kl, iwae_nll
from genlab.models.latent.nets import NetConfig as LatentNetConfig
from genlab.models.nets import choose_net


def test_gaussian_kl_is_the_closed_form_of_torch_distributions():
    torch.manual_seed(0)
    mu, logvar = torch.randn(5, 4) * 2, torch.randn(5, 4)
    expected = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)).sum(1)
    assert torch.allclose(gaussian_kl(mu, logvar), expected, atol=1e-5)
    assert torch.equal(gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 3)), torch.zeros(2))   # q = p


def test_iwae_with_one_sample_is_the_one_sample_negative_elbo_on_the_same_noise():
    torch.manual_seed(0)
    mu, logvar, x = torch.randn(6, 3), torch.randn(6, 3) * 0.5, torch.randn(6, 3)

    def log_likelihood(z):               # log p(x | z) = log N(x; z, 1), x repeated for each draw
        return Normal(z, 1.0).log_prob(x.repeat(len(z) // len(x), 1)).sum(1)

    torch.manual_seed(7)
    bound = iwae_nll(mu, logvar, log_likelihood, k=1, chunk=1)
    torch.manual_seed(7)
    std = torch.exp(0.5 * logvar)
    z = mu + std * torch.randn(1, *mu.shape)[0]
    elbo = log_likelihood(z) + Normal(0.0, 1.0).log_prob(z).sum(1) - Normal(mu, std).log_prob(z).sum(1)
    assert torch.allclose(bound, -elbo, atol=1e-5)


@pytest.mark.parametrize("shape, latent, adversarial", [
    ((1, 8, 8), "mlp", "mlp"),          # the digits: both families stay fully connected
    ((1, 16, 16), "mlp", "conv"),       # from 16 px the GANs take DCGAN's nets
    ((1, 28, 28), "conv", "conv"),      # MNIST: convolutions for both
    ((3, 32, 32), "conv", "conv"),
    ((1, 1, 1), "mlp", "mlp"),          # the 2-D toys
    ((2, 1, 1), "mlp", "mlp"),
])
def test_auto_picks_each_familys_net(shape, latent, adversarial):
    assert LatentNetConfig().net_kind(shape) == latent
    assert AdversarialNetConfig().net_kind(shape) == adversarial
    assert choose_net("auto", shape, conv_from=LatentNetConfig.conv_from) == latent


def test_a_forced_net_is_kept_whatever_the_shape():
    for kind in ("mlp", "conv"):
        assert choose_net(kind, (1, 1, 1), conv_from=16) == kind
        assert LatentNetConfig(net=kind).net_kind((3, 64, 64)) == kind


def test_progress_writes_a_plain_line_every_ten_seconds_where_output_is_no_terminal(monkeypatch):
    import io

    from genlab import progress

    class Clock:                                      # the module's clock alone, moved by hand
        now = 0.0

        @classmethod
        def perf_counter(cls):
            return cls.now
    monkeypatch.setattr(progress, "time", Clock)
    out = io.StringIO()
    bar = progress.Progress(20, "epoch 1/1", stream=out, live=False)
    for _ in range(11):                               # 33 s of work, 3 s a step
        Clock.now += 3.0
        bar.update(1, items=64, loss=1.0)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and all(line.startswith("epoch 1/1 |") and "\r" not in line for line in lines)
    assert "4/20" in lines[0] and "8/20" in lines[1]  # after 12 s (the first step past 10 s) and 24 s


def test_a_models_long_loop_shows_a_bar_only_where_a_command_asks():
    import contextlib
    import io

    from genlab import progress
    from genlab.data.containers.base import DataInfo
    from genlab.models import get_model_class
    from genlab.models.base import make_config
    DDPM = get_model_class("ddpm")
    tiny = {"channels": "8", "mults": "1 2", "timesteps": "100"}
    model = DDPM(make_config(DDPM.Config, tiny), DataInfo(shape=(1, 8, 8), num_classes=0, pixels="continuous"))
    quiet = io.StringIO()
    with contextlib.redirect_stderr(quiet):
        model.sample(2, steps=60)                             # the library alone: silent
    assert quiet.getvalue() == ""
    out = io.StringIO()
    with progress.shown(stream=out):
        model.sample(2, steps=60)
        model.sample(2, steps=10)                             # a short loop: no bar
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("denoising (DDIM steps) |") and "60/60" in lines[0]


def test_a_grid_with_row_labels_writes_each_label_beside_its_row(tmp_path):
    import numpy as np
    import torch
    from PIL import Image

    from genlab.data.containers.images import save_grid
    images = torch.zeros(6, 1, 8, 8)                 # black images: any dark pixel in the margin is text
    plain, labelled = tmp_path / "a.png", tmp_path / "b.png"
    save_grid(images, plain, nrow=2)
    save_grid(images, labelled, nrow=2, row_labels=["a thick seven", "a small three", "an eight"])
    a, b = np.asarray(Image.open(plain)), np.asarray(Image.open(labelled))
    assert b.shape[0] == a.shape[0] and b.shape[1] > a.shape[1]
    margin = b[:, : b.shape[1] - a.shape[1]]
    bands = np.array_split(margin, 3, axis=0)       # one band per row of the grid
    assert all((band < 128).any() for band in bands)
    assert (b[:, b.shape[1] - a.shape[1]:] == a).all()   # the grid itself unchanged


def test_a_watched_thread_hands_every_step_to_its_watcher_and_other_threads_stay_apart():
    import io
    import threading

    from genlab import progress
    seen, elsewhere = [], []
    with progress.watched(lambda *step: seen.append(step)):
        progress.tick("drawing sound samples", 1, 3, "sample")           # silent: no command shows it
        bar = progress.Progress(4, "building tones", unit="clip", stream=io.StringIO(), live=False)
        bar.update(2, items=2)
        other = threading.Thread(target=lambda: progress.tick("another request", 1, 9))
        with progress.watched(lambda *step: elsewhere.append(step)):
            other.start()
            other.join()
    progress.tick("after", 1, 2)                                         # no watcher any more
    assert seen == [("drawing sound samples", 1, 3, "sample"), ("building tones", 0, 4, "clip"),
                    ("building tones", 2, 4, "clip")]
    assert elsewhere == []                                               # the other thread's step is its own
