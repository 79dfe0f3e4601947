"""Triton kernels and their launchers. Only imported when a Triton path runs."""
