"""Energy-based models: p(x) = exp(−F(x)) / Z, with Z out of reach and estimated.

    rbm.py    restricted Boltzmann machine of binary units, trained by CD-k or persistent CD, sampled by Gibbs
    ais.py    annealed importance sampling of its log Z (and the exact sum, for small ones)
"""
