"""What genbench's own modules register (see bench.names). Written by `python -m bench.names`;
do not edit."""

DECLARED = {
    "modules": [
        "bench.features.pixels",
        "bench.features.classifier",
        "bench.features.inception",
        "bench.features.foundation",
        "bench.metrics.fd",
        "bench.metrics.kid",
        "bench.metrics.prdc",
        "bench.metrics.memorization",
        "bench.metrics.modes",
        "bench.metrics.inception_score",
        "bench.metrics.model",
        "bench.metrics.cmmd",
        "bench.metrics.vendi",
        "bench.metrics.conditional",
        "bench.study.hype",
        "baselines",
    ],
    "models": [
        "cdcgan",
        "cddpm",
        "class-dropper",
        "cond-copier",
        "copier",
        "cvae",
        "dcgan",
        "ddpm",
        "label-shuffler",
        "mixture",
        "noisy-copier",
        "pixel-gaussian",
        "pixelcnn",
        "realnvp",
        "vae",
        "wgan-gp",
    ],
    "model_signatures": {
        "cdcgan": {
            "name": "CDCGAN",
            "params": {
                "shape": False,
                "kind": True,
                "num_classes": False,
                "z_dim": True,
                "width": True,
                "batch_size": True,
                "lr": True,
                "betas": True,
                "device": True,
            },
            "var_keyword": False,
        },
        "cddpm": {
            "name": "CDDPM",
            "params": {
                "shape": False,
                "kind": True,
                "num_classes": False,
                "T": True,
                "schedule": True,
                "width": True,
                "channel_mult": True,
                "blocks": True,
                "batch_size": True,
                "lr": True,
                "ema": True,
                "grad_clip": True,
                "p_uncond": True,
                "sampler": True,
                "steps": True,
                "eta": True,
                "guidance": True,
                "device": True,
            },
            "var_keyword": False,
        },
        "class-dropper": {
            "name": "ClassDropper",
            "params": {"kind": True, "keep_classes": True, "drop": True},
            "var_keyword": False,
        },
        "cond-copier": {
            "name": "ConditionalCopier",
            "params": {"num_classes": False},
            "var_keyword": False,
        },
        "copier": {"name": "Copier", "params": {"kind": True}, "var_keyword": False},
        "cvae": {
            "name": "CVAE",
            "params": {
                "shape": False,
                "kind": True,
                "num_classes": False,
                "z_dim": True,
                "width": True,
                "batch_size": True,
                "lr": True,
                "sample_mode": True,
                "device": True,
            },
            "var_keyword": False,
        },
        "dcgan": {
            "name": "DCGAN",
            "params": {
                "shape": False,
                "kind": True,
                "z_dim": True,
                "width": True,
                "hidden": True,
                "depth": True,
                "batch_size": True,
                "lr": True,
                "betas": True,
                "device": True,
            },
            "var_keyword": False,
        },
        "ddpm": {
            "name": "DDPM",
            "params": {
                "shape": False,
                "kind": True,
                "T": True,
                "schedule": True,
                "width": True,
                "channel_mult": True,
                "blocks": True,
                "hidden": True,
                "depth": True,
                "point_std": True,
                "batch_size": True,
                "lr": True,
                "ema": True,
                "grad_clip": True,
                "sampler": True,
                "steps": True,
                "eta": True,
                "bpd_timesteps": True,
                "device": True,
            },
            "var_keyword": False,
        },
        "label-shuffler": {
            "name": "LabelShuffler",
            "params": {"num_classes": False},
            "var_keyword": False,
        },
        "mixture": {
            "name": "PCAMixture",
            "params": {"kind": True, "n_components": True, "n_pca": True},
            "var_keyword": False,
        },
        "noisy-copier": {
            "name": "NoisyCopier",
            "params": {"kind": True, "std": True},
            "var_keyword": False,
        },
        "pixel-gaussian": {"name": "PixelGaussian", "params": {"kind": True}, "var_keyword": False},
        "pixelcnn": {
            "name": "PixelCNN",
            "params": {
                "shape": False,
                "kind": True,
                "levels": True,
                "features": True,
                "layers": True,
                "first_kernel": True,
                "kernel": True,
                "batch_size": True,
                "lr": True,
                "grad_clip": True,
                "device": True,
            },
            "var_keyword": False,
        },
        "realnvp": {
            "name": "RealNVP",
            "params": {
                "shape": False,
                "kind": True,
                "scales": True,
                "width": True,
                "blocks": True,
                "batch_size": True,
                "lr": True,
                "weight_decay": True,
                "grad_clip": True,
                "temperature": True,
                "device": True,
            },
            "var_keyword": False,
        },
        "vae": {
            "name": "VAE",
            "params": {
                "shape": False,
                "kind": True,
                "z_dim": True,
                "width": True,
                "hidden": True,
                "depth": True,
                "batch_size": True,
                "lr": True,
                "sample_mode": True,
                "elbo_samples": True,
                "device": True,
            },
            "var_keyword": False,
        },
        "wgan-gp": {
            "name": "WGANGP",
            "params": {
                "shape": False,
                "kind": True,
                "z_dim": True,
                "width": True,
                "hidden": True,
                "depth": True,
                "batch_size": True,
                "lr": True,
                "betas": True,
                "n_critic": True,
                "gp_weight": True,
                "device": True,
            },
            "var_keyword": False,
        },
    },
    "datasets": ["cifar10", "digits", "fashion-mnist", "grid25", "mnist", "mnist5k", "ring8"],
    "dataset_prefixes": ["folder", "stacked"],
    "extractors": {
        "classifier": False,
        "clip_vitl14_336": True,
        "dinov2_vitb14": True,
        "dinov2_vitg14": True,
        "dinov2_vitl14": True,
        "dinov2_vits14": True,
        "inception": False,
        "pixels": False,
    },
    "metrics": {
        "bits_per_dim": {
            "columns": [("bits_per_dim", "lower", 19, True)],
            "per_extractor": False,
            "needs": ["images", "model"],
            "summary": "Bits per dimension on the test split: exact "
            "(PixelCNN, RealNVP) or a bound (VAE, DDPM); models "
            "without a likelihood skip it.",
            "in_suites": True,
        },
        "cas": {
            "columns": [("cas_", "higher", 14, True)],
            "per_extractor": False,
            "needs": ["images", "labels", "sample_labels"],
            "summary": "Classification Accuracy Score (Ravuri & Vinyals 2019): the "
            "dataset classifier's recipe trained on the samples and their "
            "asked labels, top-1 on the real test split; beside it the "
            "same recipe on as many real training images (the ceiling).",
            "in_suites": True,
        },
        "class_coverage": {
            "columns": [
                ("classes_hit", "higher", 9, True),
                ("class_kl", "lower", 10, True),
                ("class_tv", "lower", 10, True),
            ],
            "per_extractor": False,
            "needs": ["images", "labels"],
            "summary": "Classes hit, KL and TV of the classifier's labels "
            "of the samples against a reference class "
            "distribution, with the same for an equally sized "
            "real test subset (the noise floor). The reference "
            "is the training labels, or the classes asked for "
            "when the samples were asked for classes: a "
            "class-balanced conditional model is judged against "
            "balance, not against the training split's "
            "imbalance.",
            "in_suites": True,
        },
        "classifier_score": {
            "columns": [("classifier_score", "higher", 17, True)],
            "per_extractor": False,
            "needs": ["images", "labels"],
            "summary": "exp E[KL(p(y|x) || p(y))] with the dataset's "
            "classifier (Inception Score's formula).",
            "in_suites": True,
        },
        "cmmd": {
            "columns": [("cmmd_", "lower", 1.5, True)],
            "per_extractor": False,
            "needs": ["images"],
            "summary": "CMMD: MMD² in CLIP ViT-L/14@336px embeddings against an "
            "equally sized training subset, Gaussian RBF σ = 10, ×1000 "
            "(Jayasumana et al. 2024).",
            "in_suites": True,
        },
        "cond_accuracy": {
            "columns": [("cond_accuracy", "higher", 13, True)],
            "per_extractor": False,
            "needs": ["images", "labels", "sample_labels"],
            "summary": "Top-1 accuracy of the dataset's classifier on the "
            "samples against the classes asked for; beside it "
            "the classifier's accuracy on the real test split "
            "(the ceiling).",
            "in_suites": True,
        },
        "fd": {
            "columns": [("fid_", "lower", 0, True), ("fd_", "lower", 1, True)],
            "per_extractor": True,
            "needs": [],
            "summary": "Fréchet distance of the samples to the training split (FID in "
            "Inception features).",
            "in_suites": True,
        },
        "fdinf": {
            "columns": [("fdinf_", "lower", 3, True)],
            "per_extractor": True,
            "needs": [],
            "summary": "FD extrapolated to infinitely many samples (Chong & Forsyth 2020).",
            "in_suites": True,
        },
        "hype": {
            "columns": [
                ("hype_inf", "higher", 18.1, True),
                ("hype_inf_fake", "higher", 18.1, True),
                ("hype_time_ms", "higher", 18.2, True),
                ("hype_inf_real", None, 18.3, True),
                ("hype_inf_lo", None, 18.5, False),
                ("hype_inf_hi", None, 18.5, False),
                ("hype_inf_fake_lo", None, 18.5, False),
                ("hype_inf_fake_hi", None, 18.5, False),
                ("hype_inf_real_lo", None, 18.5, False),
                ("hype_inf_real_hi", None, 18.5, False),
                ("hype_time_ms_lo", None, 18.5, False),
                ("hype_time_ms_hi", None, 18.5, False),
                ("hype_raters", None, 18.5, False),
                ("hype_judgements", None, 18.5, False),
                ("hype_time_excluded", None, 18.5, False),
            ],
            "per_extractor": False,
            "needs": [],
            "summary": "",
            "in_suites": False,
        },
        "inception_score": {
            "columns": [("inception_score", "higher", 18, True)],
            "per_extractor": False,
            "needs": ["images"],
            "summary": "Inception Score (10 splits) from the 1008-way "
            "Inception classifier, which only the torch hub "
            "weights file carries.",
            "in_suites": True,
        },
        "intra_fd": {
            "columns": [("intra_fd_", "lower", 2, True), ("intra_fd_worst_", "lower", 2, True)],
            "per_extractor": True,
            "needs": ["images", "labels", "sample_labels"],
            "summary": "Intra-class FD (Miyato & Koyama 2018): mean and worst "
            "over classes of the FD between the samples asked for a "
            "class and that class's training images.",
            "in_suites": True,
        },
        "kid": {
            "columns": [("kid_", "lower", 4, True)],
            "per_extractor": True,
            "needs": [],
            "summary": "KID: unbiased MMD² with the cubic kernel, 100 subsets of "
            "min(1000, n), and its std.",
            "in_suites": True,
        },
        "memorization": {
            "columns": [
                ("copy_fraction_", "lower", 13, True),
                ("authpct_", "higher", 14, True),
                ("ct_", "closer to 0", 15, True),
                ("nn_gap_ratio_", "closer to 1", 16, True),
            ],
            "per_extractor": True,
            "needs": [],
            "summary": "Copy fraction, AuthPct, C_T and the NN distance gap "
            "(always also in pixels).",
            "in_suites": True,
        },
        "modes": {
            "columns": [
                ("modes_captured", "higher", 11, True),
                ("modes_hq", "higher", 11, True),
                ("modes_reverse_kl", "lower", 11, True),
                ("stacked_modes", "higher", 12, True),
                ("stacked_kl", "lower", 12, True),
            ],
            "per_extractor": False,
            "needs": [],
            "summary": "2-D mixtures: modes captured, high-quality share, reverse "
            "KL; stacked digits: modes of k**3 and KL to uniform "
            "(VEEGAN/PacGAN).",
            "in_suites": True,
        },
        "prdc": {
            "columns": [
                ("precision_", "higher", 5, True),
                ("recall_", "higher", 6, True),
                ("density_", "higher", 7, True),
                ("coverage_", "higher", 8, True),
            ],
            "per_extractor": True,
            "needs": [],
            "summary": "Precision/recall (k=3), density/coverage (k=5) against an "
            "equally sized training subset.",
            "in_suites": True,
        },
        "throughput": {
            "columns": [
                ("throughput_img_s_", "higher", 2, True),
                ("throughput_rsd_", None, 2, False),
                ("throughput_load_", None, 2, False),
                ("throughput_disturbed_", None, 2, False),
            ],
            "per_extractor": False,
            "needs": ["model"],
            "summary": "Sampling images/s at each of the suite's batch sizes "
            "(the largest is the column), with the spread of the "
            "repeats and the other processes' CPU load while they "
            "ran; a disturbed figure is marked † on the "
            "leaderboard.",
            "in_suites": True,
        },
        "vendi": {
            "columns": [("vendi_", "higher", 17.5, True)],
            "per_extractor": True,
            "needs": [],
            "summary": "Vendi score: the effective number of distinct samples, no "
            "reference set needed (Friedman & Dieng 2023).",
            "in_suites": True,
        },
    },
    "aliases": {"fid_inception": ("fd", "inception")},
}
