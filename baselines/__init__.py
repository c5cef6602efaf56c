"""Model families. Importing this package registers every baseline with bench.models."""

from baselines import dcgan, ddpm, pixelcnn, realnvp, sanity, vae, wgan_gp  # noqa: F401
