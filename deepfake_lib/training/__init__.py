"""Training loops: fit, hard-example fine-tuning, several processes."""
