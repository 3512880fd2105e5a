"""Normalising flows: an invertible map from images to codes of the same size, log p(x) exact by the change
of variables, sampled and decoded by running the map backwards.

    realnvp.py   Real NVP (Dinh et al. 2017)       affine couplings with checkerboard and channel masks
    glow.py      Glow (Kingma & Dhariwal 2018)     actnorm, invertible 1×1 convolutions, affine couplings
    base.py      FlowModel, which both extend: the density, codes and sampling around a flow
    layers.py    the pieces they are built from: each invertible step with its log-determinant, the logit
                 pre-processing, variational dequantisation
"""
