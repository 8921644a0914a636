"""Benchmarks, and the generated sample footage they, the demo and the tests use.

Nothing here is on the hot path of making a video.
"""
