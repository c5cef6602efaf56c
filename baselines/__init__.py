"""Model families. Importing this package registers every baseline with bench.models."""

from baselines import (  # noqa: F401
    cdcgan,
    cddpm,
    cvae,
    dcgan,
    ddpm,
    pixelcnn,
    realnvp,
    sanity,
    vae,
    wgan_gp,
)
