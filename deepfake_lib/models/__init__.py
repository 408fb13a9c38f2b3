"""The detector: EfficientNet backbone + LSTM + head, its frequency branch, weights and checkpoints."""
