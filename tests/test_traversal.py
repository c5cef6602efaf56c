"""Latent traversal grids: rows per code value (InfoGAN) or per latent dimension (VAE)."""

import io

import torch
from PIL import Image

from baselines.infogan import InfoGAN
from baselines.vae import VAE
from bench.traversal import traversal_images, traversal_png


def test_a_code_model_gets_a_row_per_value_with_the_noise_fixed_along_it():
    model = InfoGAN((1, 8, 8), device="cpu", z_dim=4, categories=3, continuous=2, width=8)
    images = traversal_images(model, steps=5)
    assert images.shape == (15, 1, 8, 8) and images.dtype == torch.uint8
    # the cell at column j of row k is that code value with the first code at its j-th value
    cont = torch.tensor([[0.5, 0.0]])  # column 3 of 5 over [-1, 1]
    cell = model.sample_with_codes(
        1,
        categorical=torch.tensor([2]),
        continuous=cont,
        generator=torch.Generator().manual_seed(0),
        batch_size=1,
    )
    assert torch.equal(images[2 * 5 + 3], cell[0])


def test_a_vae_gets_a_row_per_latent_dimension():
    model = VAE((1, 8, 8), device="cpu", z_dim=3, width=8)
    images = traversal_images(model, steps=4)
    assert images.shape == (12, 1, 8, 8)
    z = torch.zeros(1, 3)
    z[0, 1] = 2.5  # row 1 (dimension 1), last column
    assert torch.equal(images[1 * 4 + 3], model.decode(z)[0])
    png = Image.open(io.BytesIO(traversal_png(model, steps=4)))
    assert png.width > png.height  # 4 columns, 3 rows


def test_models_without_codes_get_none():
    assert traversal_images(object()) is None and traversal_png(object()) is None


def test_the_report_section_shows_each_models_grid():
    from types import SimpleNamespace

    import pandas as pd

    from bench.report import page
    from bench.report.render import Assets

    png = traversal_png(VAE((1, 8, 8), device="cpu", z_dim=2, width=8), steps=3)
    board = SimpleNamespace(suite="s", dataset="d", table=pd.DataFrame(index=["vae-beta4", "gan"]))
    data = page.traversals(board, Assets(traversals={("s", "d", "vae-beta4"): png}))
    html = page.environment().get_template("sections/traversals.html").render(s=data)
    assert "Latent traversals" in html and "<figcaption>vae-beta4</figcaption>" in html
    assert html.count("<img") == 1
    assert page.traversals(board, Assets()) is None
