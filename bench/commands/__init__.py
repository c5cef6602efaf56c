"""The work of side commands (`genbench samples export`, ...); bench/cli.py only parses."""
