"""The human study (HYPE, Zhou et al. 2019): a timed real-or-fake page served locally,
answers in SQLite, scored as HYPE-infinity or HYPE-time with bootstrap intervals."""
