"""Measuring a detector: batched inference, metrics, thresholds, baselines, robustness, videos."""
