"""genbench: a benchmark and evaluation harness for generative image models."""

__version__ = "0.1.0"
