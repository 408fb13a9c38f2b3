"""robustness.py: degradations change images as intended, the spec parser, per-degradation metrics, reports."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from deepfake_lib.core.runs import skipped_record, status_text, update_metrics
from deepfake_lib.data.scan import scan_split
from deepfake_lib.evaluation import evaluate as E
from deepfake_lib.evaluation import robustness as R
from deepfake_lib.evaluation.metrics import full_metrics
from deepfake_lib.report.summary import write_summary
from tests.conftest import tiny_model

ROW_METRICS = ("auc", "balanced_accuracy", "eer", "fake_recall", "real_recall", "auc_drop")


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    """A 128 x 96 crop of a natural photo (scikit-image's astronaut): edges, texture and smooth areas."""
    return Image.fromarray(skdata.astronaut()[100:196, 150:278])


def pixels(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=np.float64)


def high_frequency_energy(img: Image.Image) -> float:
    """Variance of the 4-neighbour Laplacian of the grey image (fine detail and noise)."""
    g = pixels(img.convert("L"))
    lap = 4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:]
    return float(lap.var())


def assert_same_rgb_image(out: Image.Image, ref: Image.Image) -> None:
    assert isinstance(out, Image.Image) and out.mode == "RGB" and out.size == ref.size
    assert np.asarray(out).shape == (ref.height, ref.width, 3) and np.asarray(out).dtype == np.uint8


# --------------------------------------------------------------------------- degradations
def test_jpeg_error_grows_as_quality_falls(photo):
    outs = [R.jpeg(photo, q) for q in (90, 70, 50)]
    for out in outs:
        assert_same_rgb_image(out, photo)
        out.load()  # decoded already: nothing left to read from a closed buffer
    errors = [np.abs(pixels(out) - pixels(photo)).mean() for out in outs]
    assert 0 < errors[0] < errors[1] < errors[2]


def test_jpeg_accepts_other_modes(photo):
    assert_same_rgb_image(R.jpeg(photo.convert("RGBA"), 70), photo)


def test_blur_removes_more_fine_detail_with_more_sigma(photo):
    e0, e1, e2 = (high_frequency_energy(im) for im in (photo, R.gaussian_blur(photo, 1), R.gaussian_blur(photo, 2)))
    assert e2 < e1 < 0.5 * e0
    assert_same_rgb_image(R.gaussian_blur(photo, 2), photo)


def test_down_up_keeps_the_size_and_removes_fine_detail(photo):
    out = R.resize_down_up(photo, 2)
    assert_same_rgb_image(out, photo)
    assert high_frequency_energy(out) < 0.5 * high_frequency_energy(photo)
    assert high_frequency_energy(R.resize_down_up(photo, 4)) < high_frequency_energy(out)
    odd = photo.crop((0, 0, 33, 17))
    assert R.resize_down_up(odd, 2).size == (33, 17)
    assert R.resize_down_up(Image.new("RGB", (3, 1)), 8).size == (3, 1)


def test_down_up_leaves_a_flat_image_unchanged():
    flat = Image.new("RGB", (33, 17), (120, 60, 200))
    assert np.array_equal(np.asarray(R.resize_down_up(flat, 2)), np.asarray(flat))


@pytest.mark.parametrize("sigma", [5, 10])
def test_noise_has_the_requested_strength(sigma):
    grey = Image.new("RGB", (64, 64), (128, 128, 128))  # far from 0 and 255: no clipping
    out = R.gaussian_noise(grey, sigma, seed=0)
    assert_same_rgb_image(out, grey)
    assert (pixels(out) - 128).std() == pytest.approx(sigma, rel=0.05)


def test_noise_is_reproducible_per_seed_and_image(photo):
    same = [np.asarray(R.gaussian_noise(photo, 10, seed=0)) for _ in range(2)]
    assert np.array_equal(*same)
    assert not np.array_equal(same[0], np.asarray(R.gaussian_noise(photo, 10, seed=1)))
    # another image with the same seed gets other noise (the seed is mixed with the image content)
    grey = [Image.new("RGB", (32, 32), (v, v, v)) for v in (127, 128)]
    noise = [pixels(R.gaussian_noise(g, 10, seed=0)) - pixels(g) for g in grey]
    assert not np.array_equal(*noise)


def test_noise_is_clipped_to_the_byte_range():
    white = Image.new("RGB", (32, 32), (255, 255, 255))
    out = np.asarray(R.gaussian_noise(white, 10, seed=0))
    assert out.dtype == np.uint8 and out.max() == 255 and out.min() < 255


# --------------------------------------------------------------------------- parser
def test_default_degradations():
    specs = [d.spec for d in R.DEFAULT_DEGRADATIONS]
    assert specs == ["none", "jpeg:90", "jpeg:70", "jpeg:50", "blur:1", "blur:2", "downup:2", "noise:5", "noise:10"]
    assert [d.spec for d in R.parse_degradations(None)] == specs
    assert [(d.name, d.severity) for d in R.DEFAULT_DEGRADATIONS[:2]] == [("none", "-"), ("jpeg", 90)]


def test_parse_degradations_forms():
    degs = R.parse_degradations(["downup", " Blur:1.5 ", "none", "noise:5"], seed=3)
    assert [d.spec for d in degs] == ["none", "downup:2", "blur:1.5", "noise:5"]  # baseline first, once
    assert degs[3].fn.keywords == {"sigma": 5, "seed": 3}
    assert degs[3].with_seed(7).fn.keywords["seed"] == 7 and degs[1].with_seed(7) is degs[1]
    assert [d.spec for d in R.parse_degradations([])] == ["none"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (["sharpen:1"], "unknown degradation 'sharpen'; known: jpeg, blur, downup, noise, none"),
        (["jpeg"], "'jpeg' needs a severity"),
        (["jpeg:abc"], "bad severity 'abc' for 'jpeg'"),
        (["jpeg:101"], "whole number from 1 to 100"),
        (["jpeg:50.5"], "whole number from 1 to 100"),
        (["blur:0"], "bad severity '0' for 'blur'"),
        (["noise:nan"], "bad severity 'nan' for 'noise'"),
        (["downup:1"], "above 1"),
        (["none:3"], "takes no severity"),
        (["jpeg:50", "jpeg:50.0"], "'jpeg:50' is listed twice"),
    ],
)
def test_parse_degradations_errors(spec, message):
    with pytest.raises(ValueError, match="^'") as err:
        R.parse_degradations(spec)
    assert message in str(err.value)


def test_parse_degradations_refuses_a_bare_string():
    with pytest.raises(TypeError, match="list of 'name:severity' strings"):
        R.parse_degradations("jpeg:50")


# --------------------------------------------------------------------------- evaluation
@pytest.fixture(scope="module")
def model():
    return tiny_model()


def test_evaluate_robustness_rows_and_clean_baseline(model, tiny_data):
    samples = scan_split(tiny_data, "test").samples
    result = R.evaluate_robustness(model, samples, 0.5, R.DEFAULT_DEGRADATIONS, 32, batch_size=8, num_workers=0,
                                   split="test", progress=False)  # fmt: skip
    table = result.table()
    assert list(zip(table["degradation"], table["severity"], strict=True)) == [
        (d.name, d.severity) for d in R.DEFAULT_DEGRADATIONS
    ]
    assert {"n", "n_skipped", *ROW_METRICS} <= set(table.columns)
    assert (table["n"] == 16).all() and (table["n_skipped"] == 0).all()
    assert np.isfinite(table[list(ROW_METRICS)].to_numpy(dtype=float)).all()
    # the clean row is the plain evaluation of the split
    plain = E.predict_split(model, tiny_data, "test", batch_size=8, progress=False)
    expected = full_metrics(plain.labels, plain.probs, 0.5)
    clean = table.iloc[0]
    for key in ("auc", "balanced_accuracy", "eer", "fake_recall", "real_recall"):
        assert clean[key] == pytest.approx(expected[key], abs=1e-9), key
    assert clean["auc_drop"] == 0.0
    assert table["auc_drop"].to_numpy() == pytest.approx(clean["auc"] - table["auc"].to_numpy())
    # the degradations reach the model: every degraded pass scores differently from the clean one
    probs = {spec: p.probs for spec, p in result.predictions.items()}
    assert all(not np.allclose(probs[spec], probs["none"]) for spec in probs if spec != "none")
    record = json.loads(json.dumps(result.to_record()))
    assert record["status"] == "done" and record["split"] == "test" and record["threshold"] == 0.5
    assert record["degradations"] == [d.spec for d in R.DEFAULT_DEGRADATIONS] and len(record["rows"]) == 9
    assert record["rows"][3]["degradation"] == "jpeg" and record["rows"][3]["severity"] == 50


def test_evaluate_robustness_skips_bad_files_and_is_reproducible(model, tiny_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny_data / "test", data / "test")
    (data / "test" / "fake" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    samples = scan_split(data, "test", validate=False).samples
    degs = R.parse_degradations(["noise:10"])
    runs = [
        R.evaluate_robustness(model, samples, 0.5, degs, 32, batch_size=8, num_workers=workers, seed=seed,
                              progress=False)
        for workers, seed in ((0, 0), (2, 0), (0, 1))
    ]  # fmt: skip
    first = runs[0]
    assert [r["n_skipped"] for r in first.rows] == [1, 1] and [r["n"] for r in first.rows] == [16, 16]
    assert [Path(p).name for p, _ in first.skipped] == ["broken.jpg"]
    assert first.to_record()["skipped"][0]["reason"].startswith("truncated or corrupt")
    # same seed, other worker processes: the same noise; another seed: other noise
    np.testing.assert_array_equal(first.predictions["noise:10"].probs, runs[1].predictions["noise:10"].probs)
    assert not np.array_equal(first.predictions["noise:10"].probs, runs[2].predictions["noise:10"].probs)
    np.testing.assert_array_equal(first.predictions["none"].probs, runs[2].predictions["none"].probs)


# --------------------------------------------------------------------------- reports
def test_robustness_plot():
    import matplotlib.pyplot as plt
    import pandas as pd

    from deepfake_lib.report import plots

    rows = [
        {"degradation": "none", "severity": "-", "auc": 0.9, "balanced_accuracy": 0.8},
        {"degradation": "jpeg", "severity": 50, "auc": 0.7, "balanced_accuracy": 0.6},
        {"degradation": "blur", "severity": 1.5, "auc": math.nan, "balanced_accuracy": 0.5},
    ]
    fig = plots.robustness(pd.DataFrame(rows))
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["jpeg 50", "blur 1.5"]
    dashed = [line.get_ydata()[0] for line in ax.lines if line.get_linestyle() == "--"]
    assert sorted(dashed) == pytest.approx([0.8, 0.9])  # the clean baseline
    assert isinstance(plots.robustness(pd.DataFrame(rows[:1])), plt.Figure)
    plt.close("all")


def test_summary_renders_the_robustness_section(tmp_path):
    record = R.RobustnessResult(
        threshold=0.42, split="test", image_size=32, seed=0,
        rows=[
            {"degradation": "none", "severity": "-", "n": 16, "auc": 0.9, "balanced_accuracy": 0.8, "auc_drop": 0.0},
            {"degradation": "jpeg", "severity": 50, "n": 16, "auc": 0.75, "balanced_accuracy": 0.7, "auc_drop": 0.15},
        ],
    ).to_record()  # fmt: skip
    update_metrics(tmp_path, "robustness", record)
    text = write_summary(tmp_path).read_text()
    assert "## Robustness" in text and "threshold 0.42 held fixed" in text and "`test` split" in text
    assert "| degradation | severity | AUC | balanced accuracy | AUC drop |" in text
    assert "| jpeg | 50 | 0.75 | 0.7 | 0.15 |" in text and "| none | - | 0.9 | 0.8 | 0 |" in text
    update_metrics(tmp_path, "robustness", skipped_record("ROBUSTNESS = False"))
    assert "- not run (ROBUSTNESS = False)" in write_summary(tmp_path).read_text()
    # every skipped section has one form (runs.skipped_record), and the summary says why
    update_metrics(tmp_path, "video", skipped_record("no video clips in 'test'"))
    assert "- skipped (no video clips in 'test')" in write_summary(tmp_path).read_text()
    assert status_text({"status": "done"}) == "done" and status_text({}) == "not run"
