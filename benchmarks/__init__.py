"""Benchmarks of what users feel, each against a baseline measured in the same run."""
