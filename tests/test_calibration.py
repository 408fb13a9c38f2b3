"""Temperature scaling, test-time augmentation and the false-alarm budget threshold."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from deepfake_lib.evaluation import calibration, evaluate
from deepfake_lib.evaluation.inference import Predictions
from deepfake_lib.evaluation.metrics import expected_calibration_error, roc_points
from deepfake_lib.models import load_model, save_model
from deepfake_lib.models.checkpoint import CheckpointError, load_checkpoint
from deepfake_lib.models.tta import TTA_MODES, TTAModel, tta_views, with_tta
from deepfake_lib.predict.predictors import Predictor
from tests.conftest import TINY_SIZE, tiny_model


def overconfident(n: int = 4000, scale: float = 3.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from sigmoid(z) and the logits ``scale * z`` of a model that is ``scale`` times too sure."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 2, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    return scale * z, y


def test_the_fitted_temperature_undoes_overconfidence() -> None:
    logits, labels = overconfident()
    fit = calibration.fit_temperature(logits, labels, "val")
    assert fit.temperature == pytest.approx(3.0, rel=0.1)
    assert fit.nll_after < fit.nll_before and fit.ece_after < fit.ece_before / 2 and fit.brier_after < fit.brier_before
    assert fit.nll_after == pytest.approx(calibration.binary_nll(logits, labels, fit.temperature))


def test_an_underconfident_model_gets_a_temperature_below_one() -> None:
    logits, labels = overconfident(scale=0.4)
    assert calibration.fit_temperature(logits, labels).temperature == pytest.approx(0.4, rel=0.1)


def test_one_class_leaves_the_temperature_at_one() -> None:
    fit = calibration.fit_temperature(np.array([2.0, 3.0]), np.array([1, 1]), "val")
    assert fit.temperature == 1.0 and "lacks a class" in fit.warning


def test_rescale_keeps_the_ranking() -> None:
    logits, labels = overconfident(200)
    preds = Predictions(1 / (1 + np.exp(-logits)), labels, [str(i) for i in range(200)], logits.astype(np.float32))
    out = calibration.rescale(preds, 2.0)
    assert np.allclose(out.logits, logits / 2, atol=1e-5)
    assert np.allclose(out.probs, 1 / (1 + np.exp(-logits / 2)))
    assert (np.argsort(out.probs) == np.argsort(preds.probs)).all() and out is not preds


def test_the_temperature_survives_checkpoint_and_predict(tmp_path: Path) -> None:
    model = tiny_model()
    x = torch.randn(3, 1, 3, TINY_SIZE, TINY_SIZE)
    with torch.no_grad():
        raw = model(x)
    path = save_model(model, tmp_path / "m.pth")
    logits, labels = overconfident(400)
    fit = calibration.fit_temperature(logits, labels, "val", tta="hflip")
    calibration.store_calibration(path, fit)
    ckpt = load_checkpoint(path)
    assert ckpt["temperature"] == pytest.approx(fit.temperature) and ckpt["tta"] == "hflip"
    assert ckpt["calibration"]["split"] == "val" and ckpt["calibration"]["chosen_by"] == "evaluation"
    loaded, _ = load_model(path)
    assert float(loaded.temperature) == pytest.approx(fit.temperature)
    with torch.no_grad():
        assert torch.allclose(loaded(x), raw / fit.temperature, atol=1e-5)
    predictor = Predictor.from_checkpoint(path, "cpu")
    assert predictor.tta == "hflip"  # what the temperature was fitted with
    probs, _ = predictor.score(x, heatmaps=False)
    with torch.no_grad():
        expected = torch.sigmoid((model(x) + model(x.flip(-1))) / 2 / fit.temperature).double().numpy()
    assert np.allclose(probs, expected, atol=1e-5)
    assert Predictor.from_checkpoint(path, "cpu", tta="none").tta == "none"


def test_a_bad_stored_temperature_is_refused(tmp_path: Path) -> None:
    path = save_model(tiny_model(), tmp_path / "m.pth")
    ckpt = load_checkpoint(path)
    ckpt["temperature"] = -1.0
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match="temperature"):
        load_model(path)


def test_calibrated_export_scores_like_predict(tmp_path: Path) -> None:
    """The ONNX graph divides by the temperature and averages the TTA views; its metadata says so."""
    pytest.importorskip("onnxruntime", reason="the [onnx] extra is not installed")
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from deepfake_lib.deploy.export import export_onnx
    from deepfake_lib.predict.onnx_predictor import OnnxPredictor

    path = save_model(tiny_model(), tmp_path / "m.pth")
    ckpt = load_checkpoint(path)
    ckpt.update(temperature=2.5, tta="hflip", calibration={"temperature": 2.5})
    torch.save(ckpt, path)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        result = pool.submit(export_onnx, path, tmp_path / "m.onnx").result()
    assert result.max_abs_diff <= 1e-4
    meta = result.metadata
    assert meta["temperature"] == 2.5 and meta["tta"] == "hflip" and meta["calibrated"] is True
    images = [Image.fromarray(np.random.default_rng(i).integers(0, 255, (40, 40, 3), dtype=np.uint8)) for i in range(3)]
    onnx_p = [p.probability for p in OnnxPredictor.from_file(result.path, "cpu").predict(images)]
    torch_p = [p.probability for p in Predictor.from_checkpoint(path, "cpu").predict(images, heatmaps=False)]
    assert np.allclose(onnx_p, torch_p, atol=1e-4)
    import onnx

    props = {p.key: p.value for p in onnx.load(str(result.path)).metadata_props}
    assert json.loads(props["temperature"]) == 2.5


class Symmetrised(nn.Module):
    """A flip-invariant model: ``model`` applied to the mean of the input and its mirror image."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x + x.flip(-1)) / 2)


def test_tta_of_a_flip_invariant_model_equals_no_tta() -> None:
    net = Symmetrised(tiny_model()).eval()
    x = torch.randn(4, 1, 3, TINY_SIZE, TINY_SIZE)
    with torch.no_grad():
        assert torch.allclose(with_tta(net, "hflip")(x), net(x), atol=1e-5)


@pytest.mark.parametrize("tta", TTA_MODES)
@pytest.mark.parametrize("training", [False, True])
def test_scoring_with_tta_leaves_the_model_in_its_mode(tiny_data: Path, tta: str, training: bool) -> None:
    """A scoring pass restores the model's own train/eval mode: a model left in train mode after a TTA pass
    would score with batch statistics, and update its BatchNorm running statistics, on its next use."""
    model = tiny_model().train(training)
    modes = [m.training for m in model.modules()]  # the model's own train() may keep frozen parts in eval
    state = {k: v.clone() for k, v in model.state_dict().items()}
    samples = evaluate.scan_split(tiny_data, "val", validate=False).samples[:4]
    evaluate.predict_samples(model, samples, batch_size=4, progress=False, tta=tta)
    assert model.training is training and [m.training for m in model.modules()] == modes
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())  # no running statistics moved


def test_tta_averages_the_logits_of_its_views() -> None:
    model = tiny_model().eval()
    x = torch.randn(2, 1, 3, TINY_SIZE, TINY_SIZE)
    assert with_tta(model, "none") is model
    for mode, n in (("hflip", 2), ("more", 4)):
        views = tta_views(x, mode)
        assert len(views) == n and all(v.shape == x.shape for v in views) and torch.equal(views[0], x)
        with torch.no_grad():
            expected = torch.stack([model(v) for v in views]).mean(0)
            assert torch.allclose(TTAModel(model, mode)(x), expected, atol=1e-5)
    assert torch.equal(tta_views(x, "hflip")[1], x.flip(-1))
    with pytest.raises(ValueError, match="TTA must be one of"):
        with_tta(model, "ten-crop")
    assert TTA_MODES == ("none", "hflip", "more")
    from deepfake_lib.cli.predict import build_parser

    assert tuple(next(a for a in build_parser()._actions if a.dest == "tta").choices) == TTA_MODES


def test_the_false_alarm_budget_threshold() -> None:
    rng = np.random.default_rng(0)
    labels = np.r_[np.zeros(500, int), np.ones(500, int)]
    probs = np.r_[rng.beta(2, 5, 500), rng.beta(5, 2, 500)]
    for budget in (0.0, 0.01, 0.05, 0.2):
        choice = evaluate.choose_threshold(labels, probs, "target_fpr", split="val", target_fpr=budget)
        fpr = float(((probs >= choice.threshold) & (labels == 0)).sum() / 500)
        assert fpr <= budget and choice.at_threshold["fpr"] == pytest.approx(fpr) and choice.target_fpr == budget
        # the most fakes caught within the budget: the next ROC point would break it
        f, t, thr = roc_points(labels, probs)
        best = max(tt for ff, tt in zip(f, t, strict=True) if ff <= budget + 1e-12)
        assert choice.at_threshold["fake_recall"] == pytest.approx(best)
    info = evaluate.threshold_info(choice)
    assert info["method"] == "target_fpr" and info["target_fpr"] == 0.2
    with pytest.raises(ValueError, match="target_fpr"):
        evaluate.choose_threshold(labels, probs, "target_fpr", target_fpr=1.0)


def test_ece_helper_agrees_with_the_fit_record() -> None:
    logits, labels = overconfident(500)
    fit = calibration.fit_temperature(logits, labels)
    assert fit.ece_before == pytest.approx(expected_calibration_error(labels, 1 / (1 + np.exp(-logits))))
