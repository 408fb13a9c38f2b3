"""Linear-probe baseline: frozen ImageNet features, logistic regression, honest split roles."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from deepfake_lib.cli import probe as probe_cli
from deepfake_lib.data.scan import scan_split
from deepfake_lib.evaluation import probe
from deepfake_lib.models.detector import build_model


def test_features_are_the_frozen_pooled_backbone_output(separable: Path) -> None:
    model = build_model(backbone="efficientnet-lite0", pretrained=True, image_size=32, trainable_blocks=0)
    samples = scan_split(separable, "val").samples
    feats = probe.extract_features(model, samples, batch_size=5, progress=False)
    assert feats.x.shape == (len(samples), 1280) and feats.x.dtype == np.float32
    assert list(feats.labels) == [s.label for s in samples] and feats.bad == []
    again = probe.extract_features(model, samples, batch_size=64, progress=False)
    np.testing.assert_allclose(feats.x, again.x, rtol=1e-4, atol=1e-5)


def test_probe_separates_an_easy_set_and_reports_on_the_report_split(separable: Path, tmp_path: Path) -> None:
    out = tmp_path / "probe.json"
    argv = ["--data", str(separable), "--backbone", "efficientnet-lite0", "--image-size", "32", "--pretrained", "true"]
    assert probe_cli.main([*argv, "--report-split", "val", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["model"]["backbone"] == "efficientnet-lite0" and result["model"]["pretrained_loaded"]
    assert result["report_split"] == "val" and result["n"] == {"train": 24, "val": 12}
    assert result["report"]["auc"] > 0.95  # dark vs bright images: trivially linearly separable
    assert probe_cli.main([*argv, "--report-split", "test"]) == 2  # no such split: a clear error
