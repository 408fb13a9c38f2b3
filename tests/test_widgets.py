"""The inspector's callbacks (no browser: handlers are called with fake traitlets changes) and the gallery."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image

from deepfake_lib.data.scan import Sample
from deepfake_lib.explain.spectra import split_spectra
from deepfake_lib.predict.predictors import Predictor
from deepfake_lib.ui import gallery
from deepfake_lib.ui.gallery import Example
from deepfake_lib.ui.widgets import Inspector, SpectrumInspector
from tests.conftest import tiny_model

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor(tiny_model(image_size=64), image_size=64, threshold=0.5)


@pytest.fixture
def examples(tiny_data: Path) -> list[Example]:
    val = tiny_data / "val"
    return [
        Example(val / "real" / "real_0000.jpg", 0, "real"),
        Example(val / "real" / "real_0001.jpg", 0, "real"),
        Example(val / "fake" / "fake_0000.jpg", 1, "fake"),
        Example(val / "fake" / "fake_0001.jpg", 1, "fake", 0.2),
        Example(val / "real" / "real_0002.jpg", 0, "failed", 0.7),
    ]


def upload_value(name: str, content: bytes) -> tuple[dict, ...]:
    """What ipywidgets 8's FileUpload.value holds after a browser upload."""
    item = {"name": name, "type": "image/png", "size": len(content), "content": memoryview(content)}
    return ({**item, "last_modified": datetime(2026, 1, 1, tzinfo=UTC)},)


def png_of(size: tuple[int, int], colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


def test_inspector_shows_image_heatmap_probability_and_decision(predictor, examples) -> None:
    ins = Inspector(predictor, examples)
    assert ins.shown == 0 and ins.threshold.value == 0.5
    assert bytes(ins.image.value).startswith(PNG) and bytes(ins.heatmap.value).startswith(PNG)
    pred = ins.predictions[0]
    assert f"{pred.probability:.4f}" in ins.info.value and "real_0000.jpg" in ins.info.value
    assert pred.decision_at(0.5) in ins.info.value
    assert ins.predictions[1] is None  # predictions are computed on first view only

    ins.on_select({"new": 2})
    assert "fake_0000.jpg" in ins.info.value and ins.predictions[2] is not None


def test_threshold_slider_changes_the_decision_not_the_probability(predictor, examples) -> None:
    ins = Inspector(predictor, examples)
    p = ins.predictions[0].probability
    ins.threshold.value = 0.0  # the observer calls on_threshold
    assert "decision: <b style='color:#c0392b'>FAKE</b>" in ins.info.value and f"{p:.4f}" in ins.info.value
    ins.threshold.value = 1.0
    assert ">REAL</b>" in ins.info.value and "correct" in ins.info.value  # example 0 is REAL
    ins.threshold.value = 0.0
    assert "<b>wrong</b>" in ins.info.value
    assert ins.predictions[0].probability == p


def test_group_filter_limits_the_dropdown(predictor, examples) -> None:
    ins = Inspector(predictor, examples)
    assert list(ins.group.options) == ["all", "real", "fake", "failed"]
    ins.group.value = "failed"
    assert [i for _, i in ins.select.options] == [4] and ins.shown == 4
    assert "real_0002.jpg" in ins.info.value and "failed" in ins.info.value
    ins.group.value = "all"
    assert len(ins.select.options) == 5 and ins.shown == 4  # the selection is kept


def test_upload_through_filewidget_value_and_handler(predictor, examples) -> None:
    ins = Inspector(predictor, examples)
    ins.group.value = "fake"
    ins.upload.value = upload_value("mine.png", png_of((90, 50), (200, 30, 30)))  # as a browser would
    assert ins.shown == 5 and ins.examples[5].group == "uploaded" and ins.group.value == "all"
    assert "mine.png" in ins.info.value and "label: ?" in ins.info.value
    assert ins.predictions[5].heatmap.shape == (50, 90)
    assert "uploaded" in ins.group.options and ins.status.value == ""

    index = ins.add_image(png_of((40, 40), (0, 0, 255)), "second.png")
    assert index == 6 == ins.shown and "second.png" in ins.info.value

    assert ins.upload.value == ()  # cleared, so the same file can be uploaded again
    ins.upload.value = upload_value("mine.png", png_of((90, 50), (200, 30, 30)))
    assert len(ins.examples) == 8 and ins.shown == 7


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"not an image at all", "not an image"),
        (b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 3\n", "git lfs pull"),
        (b"", "empty file"),
    ],
)
def test_bad_upload_reports_the_reason(predictor, examples, content: bytes, reason: str) -> None:
    ins = Inspector(predictor, examples)
    ins.on_upload({"new": ({"name": "bad.png", "content": memoryview(content)},)})
    assert reason in ins.status.value and "bad.png" in ins.status.value
    assert len(ins.examples) == 5 and ins.shown == 0
    ins.on_upload({"new": ()})  # clearing the upload widget is a no-op


def test_unreadable_example_shows_an_error_not_an_exception(predictor, examples, tmp_path: Path) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 20)
    ins = Inspector(predictor, [*examples, Example(broken, 1, "fake")])
    ins.select.value = 5
    assert "broken.jpg" in ins.status.value and bytes(ins.image.value) == b"" and ins.info.value == ""
    ins.select.value = 0
    assert ins.status.value == "" and bytes(ins.image.value).startswith(PNG)


def test_inspector_accepts_precomputed_predictions(predictor, examples) -> None:
    kept, preds = gallery.predict_examples(predictor, examples[:2])
    ins = Inspector(predictor, kept, preds, threshold=0.3)
    assert ins.predictions[0] is preds[0] and ins.threshold.value == 0.3
    with pytest.raises(ValueError, match="one to one"):
        Inspector(predictor, examples, preds)


# --------------------------------------------------------------------------- gallery
def test_pick_examples_and_score_failures(predictor, tiny_data: Path) -> None:
    samples = [
        Sample(p, label)
        for label, cls in enumerate(("real", "fake"))
        for p in sorted((tiny_data / "val" / cls).glob("*.jpg"))
    ]
    failures = gallery.score_failures(predictor, samples, batch_size=8, num_workers=0, progress=False)
    for f in failures:
        assert (f.probability >= predictor.threshold) != (f.label == 1)
    losses = [f.probability if f.label == 0 else 1 - f.probability for f in failures]
    assert losses == sorted(losses, reverse=True)  # hardest first
    fake_failure = [Example(samples[-1].path, 1, "failed", 0.1)]
    picked = gallery.pick_examples(samples, fake_failure, n_per_group=3, seed=0)
    assert [e.group for e in picked] == ["real"] * 3 + ["fake"] * 3 + ["failed"]
    assert samples[-1].path not in [e.path for e in picked if e.group == "fake"]
    assert picked == gallery.pick_examples(samples, fake_failure, n_per_group=3, seed=0)  # reproducible


def test_score_failures_scores_as_the_predictor_does(tiny_data: Path) -> None:
    """05's failure grid uses the predictor's test-time augmentation: the scores its threshold was chosen on."""
    model = tiny_model(image_size=64)
    samples = [Sample(p, 0) for p in sorted((tiny_data / "val" / "real").glob("*.jpg"))]
    flipped = Predictor(model, image_size=64, threshold=0.0, tta="hflip")  # every REAL image fails
    failures = gallery.score_failures(flipped, samples, batch_size=8, num_workers=0, progress=False)
    assert len(failures) == len(samples)
    by_path = {f.path: f.probability for f in failures}
    for s, pred in zip(samples, flipped.predict([s.path for s in samples], heatmaps=False), strict=True):
        assert by_path[Path(s.path)] == pytest.approx(pred.probability, abs=1e-5)
    plain = Predictor(model, image_size=64, threshold=0.0).predict([s.path for s in samples], heatmaps=False)
    assert any(abs(by_path[Path(s.path)] - p.probability) > 1e-5 for s, p in zip(samples, plain, strict=True))


def test_gradcam_grid_and_table(predictor, examples) -> None:
    kept, preds = gallery.predict_examples(predictor, examples)
    fig = gallery.gradcam_grid(kept, preds, threshold=0.5)
    image_axes = [ax for ax in fig.axes if ax.images]
    assert len(image_axes) == 2 * len(kept)
    rows = gallery.examples_table(kept, preds, 0.5)
    assert [r["group"] for r in rows] == ["real", "real", "fake", "fake", "failed"]
    assert all(r["correct"] == ((r["decision"] == "FAKE") == (r["label"] == "FAKE")) for r in rows)


def test_spectrum_inspector_shows_an_image_beside_its_class_and_says_why_one_cannot_be_read(
    tiny_data: Path, tmp_path: Path
) -> None:
    spectra = split_spectra(tiny_data, "train", 32, progress=False)
    good = [tiny_data / "test" / "fake" / "fake_0000.jpg", tiny_data / "test" / "real" / "real_0000.jpg"]
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff not really a jpeg")
    scores = {str(good[1]): {"detector": 0.25, "spectral baseline": 0.75}}
    insp = SpectrumInspector(spectra, [*good, broken], [1, 0, 1], scores)
    assert [label for label, _ in insp.select.options] == [
        "fake_0000.jpg (FAKE)",
        "real_0000.jpg (REAL)",
        "broken.jpg (FAKE)",
    ]
    assert insp.shown == 0 and bytes(insp.view.value).startswith(PNG) and "label FAKE" in insp.info.value
    first = bytes(insp.view.value)
    insp.on_select({"new": 1, "old": 0})
    assert insp.shown == 1 and bytes(insp.view.value).startswith(PNG) and bytes(insp.view.value) != first
    assert "detector: P(FAKE) = 0.250" in insp.info.value and "spectral baseline: P(FAKE) = 0.750" in insp.info.value
    insp.on_select({"new": 2, "old": 1})
    assert bytes(insp.view.value) == b"" and "broken.jpg" in insp.info.value and "cannot" in insp.info.value.lower()
    with pytest.raises(ValueError, match="one to one"):
        SpectrumInspector(spectra, good, [1])
