"""fastinv beside deepinv: a deepinv ``Blur`` physics and deepinv networks, as factories.

Audit with (docs/deepinv.md; run from this folder or put it on ``PYTHONPATH``)::

    fastinv analyze --operator deepinv_blur:make_physics --model deepinv_blur:make_model \\
        --prior grf --noise 0.01 --noise-type absolute --jacobian-probes 0 --out runs/dinv

``make_model`` is an (untrained) ``ArtifactRemoval(DnCNN)``: load your weights there.
``make_linear_model`` is a linear deepinv model, x = Aᵀ y, whose audit is known exactly
(its fitted matrix C is Aᵀ). Everything is float64, so that A and C are exact to rounding;
with ``DTYPE = torch.float32`` (not tested here) A is exact only to float32 rounding.
"""

import deepinv as dinv
import torch

__all__ = [
    "DTYPE",
    "PSF_SIGMA",
    "SHAPE",
    "SIGMA",
    "make_linear_model",
    "make_model",
    "make_physics",
]

SHAPE = (1, 16, 16)  # (C, H, W): fastinv's rows are these images flattened, pixel (r, c) at r·W + c
SIGMA = 0.01  # the Gaussian noise of the measurements
PSF_SIGMA = (1.0, 1.25)  # the blur's standard deviations in pixels (rows, columns)
DTYPE = torch.float64


def make_physics():
    """deepinv Gaussian blur (PSF_SIGMA) with circular boundary on 1 x 16 x 16 images."""
    kernel = dinv.physics.functional.gaussian_blur(sigma=PSF_SIGMA, dtype=DTYPE)
    physics = dinv.physics.Blur(
        filter=kernel,
        padding="circular",
        img_size=SHAPE,
        noise_model=dinv.physics.GaussianNoise(sigma=SIGMA),
    )
    return physics.to(DTYPE)  # all its buffers: fastinv computes in the physics' dtype


def make_model():
    """A deepinv network called as ``model(y, physics)``: DnCNN on the back-projection Aᵀ y."""
    torch.manual_seed(0)
    net = dinv.models.DnCNN(in_channels=1, out_channels=1, depth=3, nf=8, pretrained=None)
    # net.load_state_dict(torch.load("weights.pth"))  # your trained weights
    return dinv.models.ArtifactRemoval(net, mode="adjoint").to(DTYPE).eval()


class _Scale(torch.nn.Module):
    """A linear "denoiser" backbone: x -> weight · x (deepinv calls it as net(x, sigma))."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones((), dtype=DTYPE))

    def forward(self, x, sigma=None):
        return self.weight * x


def make_linear_model():
    """``ArtifactRemoval`` on a linear backbone: x = Aᵀ y, so the audit's C is exactly Aᵀ."""
    return dinv.models.ArtifactRemoval(_Scale(), mode="adjoint").eval()
