"""One unit everywhere, and every figure with its uncertainty.

The trainer's per-epoch test row (metrics.jsonl) and `genlab eval` go through one conversion
(evaluation/likelihood.py): for 8-bit data both add D·log 256 to the density's NLL, and a bound's
reconstruction term moves with it, so the parts still add up. The ELBO draws its codes from a stream of
its own (so it does not move with --iwae-k); every figure has its standard error over the test examples;
a small, dynamically binarised test split also gets the spread over a few fixed binarisations.
Real runs on the digits (8×8, 359 test images), tiny settings: seconds each."""
from __future__ import annotations

import json
import math

import pytest

import genlab
import genlab.api
from genlab.data import load_dataset
from genlab.data.containers.loader import Batches
from genlab.evaluation.likelihood import BINARISATIONS, likelihood_report
from genlab.training.curves import draw_curves

from conftest import genlab as run_cli

pytestmark = pytest.mark.usefixtures("one_thread")

D_LOG_256 = 64 * math.log(256)          # digits: 1×8×8 pixels
VAE = {"latent_dim": 4, "hidden": 64, "batch_size": 64, "lr": 2e-3}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("units")
    return {
        "gmm": genlab.train("gmm", "digits", root / "gmm", epochs=3, components=4, samples=0, device="cpu",
                            quiet=True),
        "vae8": genlab.train("vae", "digits", root / "vae8", epochs=3, binarize="none", samples=0, device="cpu",
                             quiet=True, **VAE),
        "vae01": genlab.train("vae", "digits", root / "vae01", epochs=3, binarize="dynamic", samples=0,
                              device="cpu", quiet=True, **VAE),
    }


def evaluate(run, iwae_k: int) -> dict:
    [r] = genlab.evaluate([run.path], iwae_k=iwae_k, device="cpu", live=False)
    return r


# ---- one unit: the training log is what eval prints -----------------------------------------------------

def test_gmm_on_8bit_digits_logs_what_eval_prints(runs):
    row, r = runs["gmm"].metrics()[-1], evaluate(runs["gmm"], 0)
    assert r["nll_nats"] == pytest.approx(row["test_nll_nats"], rel=1e-12)          # exact: equal to round-off
    assert r["nll_nats_se"] == pytest.approx(row["test_nll_nats_se"], rel=1e-12)
    assert row["test_nll_bpd"] == pytest.approx(row["test_nll_nats"] / (64 * math.log(2)), rel=1e-12)
    # The shift is in both: a density over [0, 1)^64 scores far below D·log 256 nats on its own.
    assert row["test_nll_nats"] > 0 and "test_nll" not in row


def test_vae_on_8bit_data_logs_what_eval_prints_and_its_parts_add_up(runs):
    row, r = runs["vae8"].metrics()[-1], evaluate(runs["vae8"], 10)
    assert abs(r["nelbo_nats"] - row["test_nelbo_nats"]) <= r["nelbo_nats_se"]      # within its SE (here: equal)
    assert r["nelbo_nats"] == pytest.approx(row["test_nelbo_nats"], rel=1e-9)       # same weights, pixels, stream
    for source, prefix in ((r, ""), (row, "test_")):
        nelbo, recon, kl = (source[f"{prefix}{k}_nats"] for k in ("nelbo", "recon", "kl"))
        assert abs(nelbo - (recon + kl)) < 1e-6 * abs(nelbo), source                # the parts add up to the bound
        assert recon > D_LOG_256 / 2                                                # shifted like the bound
    assert 0 < r["kl_nats"] < 100                                                   # KL is not shifted
    assert r["iwae_nats"] <= r["nelbo_nats"] + 3 * r["nelbo_nats_se"]
    assert r["nelbo_bpd"] == pytest.approx(r["nelbo_nats"] / (64 * math.log(2)), rel=1e-12)


def test_recon_plus_kl_is_the_bound_in_evals_json(runs, capsys):
    capsys.readouterr()
    assert run_cli("eval", runs["vae8"].path, "--json", "--iwae-k", "5") == 0
    r = json.loads(capsys.readouterr().out)
    assert abs(r["nelbo_nats"] - (r["recon_nats"] + r["kl_nats"])) < 1e-6 * r["nelbo_nats"], r
    assert json.loads((runs["vae8"].path / "eval.json").read_text())["nelbo_nats"] == r["nelbo_nats"]


# ---- the ELBO with its own samples ------------------------------------------------------------------------

def test_the_elbo_does_not_move_with_iwae_k(runs):
    one, fifty = evaluate(runs["vae8"], 1), evaluate(runs["vae8"], 50)
    for key in ("nelbo_nats", "nelbo_nats_se", "recon_nats", "kl_nats"):
        assert one[key] == fifty[key], key                                          # identical, not close
    assert fifty["iwae_nats"] < one["iwae_nats"]                                    # the bound itself tightens
    assert one["iwae_k"] == 1 and fifty["iwae_k"] == 50


# ---- standard errors ----------------------------------------------------------------------------------------

def test_standard_errors_are_positive_and_shrink_as_one_over_root_n(runs):
    model = genlab.load(runs["vae8"].path)
    ds = load_dataset("digits")

    def report(n):
        test = Batches(ds.test_x[:n], None, binarize="none", batch_size=256, shuffle=False, seed=0)
        return likelihood_report(model, test, model.info, iwae_k=5)

    n_all = len(ds.test_x)
    sub, full = report(n_all // 4), report(n_all)
    for key in ("nelbo_nats", "iwae_nats", "recon_nats", "kl_nats", "nelbo_bpd"):
        assert sub[f"{key}_se"] > 0 and full[f"{key}_se"] > 0, key
        ratio = sub[f"{key}_se"] / full[f"{key}_se"]
        assert 0.6 * math.sqrt(4) < ratio < 1.6 * math.sqrt(4), (key, ratio)       # ≈ √(n_all / n_sub) = 2
    assert f"{n_all} test images" in full["standard_error"] and "Monte Carlo" in full["standard_error"]
    exact = evaluate(runs["gmm"], 0)
    assert exact["nll_nats_se"] > 0 and "exact" in exact["standard_error"]         # labelled as the test mean's


def test_the_table_shows_plus_minus_se(runs):
    results = [evaluate(runs["vae8"], 5), evaluate(runs["gmm"], 0)]
    table = genlab.api.format_results(results)
    nelbo = results[0]["nelbo_nats"]
    assert f"{nelbo:.2f}±{results[0]['nelbo_nats_se']:.2f}" in table
    assert "standard error" in table


# ---- the spread over binarisations --------------------------------------------------------------------------

def test_a_small_dynamically_binarised_split_reports_its_binarisation_spread(runs):
    r = evaluate(runs["vae01"], 5)
    assert r["binarisations"] == BINARISATIONS and r["binarisation_sd_of"] == "iwae_nats"
    assert 0 < r["binarisation_sd_nats"] < 5
    # The figures themselves stay on the usual binarisation (seed 0): the trainer's, on the same pixels.
    assert r["nelbo_nats"] == pytest.approx(runs["vae01"].metrics()[-1]["test_nelbo_nats"], rel=1e-9)
    assert "binar. SD" in genlab.api.format_results([r])
    assert "binarisation_sd_nats" not in evaluate(runs["vae8"], 5)                  # 8-bit: nothing binarised


# ---- old metrics.jsonl files ---------------------------------------------------------------------------------

def test_a_run_logged_with_the_old_keys_still_resumes_and_draws(tmp_path):
    run = genlab.train("vae", "digits", tmp_path / "old", epochs=1, binarize="dynamic", samples=0, device="cpu",
                       quiet=True, **VAE)
    f = run.path / "metrics.jsonl"
    row = json.loads(f.read_text())
    old = {k: v for k, v in row.items() if not k.startswith("test_")}
    old.update(test_nelbo=row["test_nelbo_nats"], test_recon=row["test_recon_nats"], test_kl=row["test_kl_nats"])
    f.write_text(json.dumps(old) + "\n")                 # as genlab wrote it before the figures had units
    genlab.resume(run.path, epochs=2, device="cpu", quiet=True)
    rows = run.metrics()
    assert "test_nelbo" in rows[0] and "test_nelbo_nats" in rows[1] and "test_nelbo" not in rows[1]
    (run.path / "curves.png").unlink(missing_ok=True)
    assert draw_curves(run.path) is not None and (run.path / "curves.png").stat().st_size > 0


# ---- text: the same conversion, per line and per token -------------------------------------------------------

def test_text_runs_log_per_line_figures_as_eval_prints_them(tmp_path):
    animals, places = ["cat", "dog", "fox", "owl", "hen"], ["hill", "sea", "wood", "town", "barn"]
    lines = [f"The {a} walked to the {p}, and the {b} stayed home." for a in animals for p in places for b in animals]
    (tmp_path / "walks.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    run = genlab.train("sentence-vae", f"text:{tmp_path / 'walks.txt'}", tmp_path / "run", epochs=1, samples=0,
                       device="cpu", quiet=True, batch_size=16, embed_dim=16, hidden=32, latent_dim=4, max_len=20)
    row = run.metrics()[-1]
    one, ten = evaluate(run, 1), evaluate(run, 10)
    assert one["nelbo_nats_per_line"] == pytest.approx(row["test_nelbo_nats_per_line"], rel=1e-9)
    assert one["nelbo_nats_per_line"] == ten["nelbo_nats_per_line"]                # the ELBO ignores --iwae-k
    assert ten["nelbo_nats_per_line_se"] > 0 and ten["iwae_nats_per_token_se"] > 0
    assert abs(ten["nelbo_nats_per_line"] - ten["recon_nats_per_line"] - ten["kl_nats_per_line"]) < 1e-4
    assert ten["nelbo_nats_per_token"] == pytest.approx(ten["nelbo_nats_per_line"] * ten["test_lines"]
                                                        / ten["test_tokens"], rel=1e-9)
    assert "test_nelbo" not in row and "test_tokens" not in row
