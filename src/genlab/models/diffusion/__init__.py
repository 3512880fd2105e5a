"""Diffusion models: noise added to an image over T steps, and a network trained to take it away.

    ddpm.py       DDPM (Ho et al. 2020): ε-prediction, DDIM sampling in any number of steps, Ho et al.'s bound
    unet.py       the small U-Net with a timestep embedding that predicts the noise
    schedule.py   noise schedules (linear, cosine) and the Gaussian mathematics of the bound, apart from the net
"""
