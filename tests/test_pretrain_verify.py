"""The verify suite's F28 check passes on fnnjax.pretrain and fails on wrong variants."""

import numpy as np

import fnnjax
from fnnjax.verify.formulas._checks_pretraining import layerwise_autoencoders
from fnnjax.verify.formulas._registry import get_check
from fnnjax.verify.formulas._runner import run_check

CHECK = get_check("F28-layerwise-autoencoders")


def test_f28_check_is_registered_and_passes():
    assert CHECK is layerwise_autoencoders
    result = run_check(CHECK, quick=True)
    assert result.status == "pass", result.measured
    for name in ("untied", "tied"):
        assert result.measured[f"{name}: layer 1 min cosine to PCA(x)"] > 0.99
        assert result.measured[f"{name}: layer 2 min cosine to PCA(layer-1 codes)"] > 0.99


def not_trained(mlp, params, x, **options):
    """Wrong: returns the initial params."""
    return fnnjax.Pretrained(params, ())


def layer2_on_initial_codes(mlp, params, x, *, key, **options):
    """Wrong: layer 2 is trained on the codes of the UNtrained layer 1 (not the layer below's)."""
    first = fnnjax.pretrain(mlp, params, x, key=key, **options)
    codes = x @ params[0].W.T + params[0].b[None, :]
    upper = fnnjax.MLP(mlp.sizes[1:], hidden=mlp.hidden[1:], output=mlp.output)
    second = fnnjax.pretrain(upper, params[1:], codes, key=key, **options)
    return fnnjax.Pretrained((first.params[0], second.params[0], params[2]), ())


def encoder_path_only(ae_mlp, ae, a):
    """Wrong: the tied gradient without the decoder path's contribution."""
    enc, dec = fnnjax.backprop(ae_mlp, (fnnjax.Layer(ae.W, ae.b), fnnjax.Layer(ae.W.T, ae.c)), a, a, "mse")
    return fnnjax.TiedAutoencoder(enc.W, enc.b, dec.b)


def test_f28_check_fails_on_wrong_variants():
    untrained = run_check(CHECK, quick=True, pretrain=not_trained)
    assert untrained.status == "fail"
    assert untrained.measured["untied: layer 1 min cosine to PCA(x)"] < 0.9
    wrong_data = run_check(CHECK, quick=True, pretrain=layer2_on_initial_codes)
    assert wrong_data.status == "fail"
    assert wrong_data.measured["untied: layer 1 min cosine to PCA(x)"] > 0.99  # layer 1 is right
    assert wrong_data.measured["untied: layer 2 min cosine to PCA(layer-1 codes)"] < 0.9
    one_path = run_check(CHECK, quick=True, tied_gradient=encoder_path_only)
    assert one_path.status == "fail"
    assert one_path.measured["tied gradient max rel error vs jax.grad"] > 1e-3
    assert np.isfinite(one_path.measured["untied: layer 1 min cosine to PCA(x)"])
