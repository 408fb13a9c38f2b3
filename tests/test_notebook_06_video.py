"""The video workflow end to end: notebooks 01, 02, 03 and 06 through the pipeline on tiny data with videos, and
06 saying so on data without videos."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from deepfake_lib.core.runs import read_json
from deepfake_lib.models.checkpoint import load_checkpoint
from tests.conftest import NOTEBOOK_RUN_PARAMS, TINY_FRAMES, NotebookRun

pytestmark = pytest.mark.slow
VIDEO_PARAMS = {
    **NOTEBOOK_RUN_PARAMS, "EPOCHS": 1, "FRAMES": TINY_FRAMES, "CLIPS_PER_VIDEO": 2, "LINEAR_PROBE": False,
    "ROBUSTNESS": False, "N_VIDEOS": 4, "N_SUSPICIOUS": 2, "VIDEO_FRAMES": 2 * TINY_FRAMES,  # as 01 cut them
}  # fmt: skip


@pytest.fixture(scope="module")
def video_run(tiny_video_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from deepfake_lib import pipeline

    runs = tmp_path_factory.mktemp("video_run")
    lines: list[str] = []
    return pipeline.run_pipeline(
        VIDEO_PARAMS, steps="01,02,03,06", run_id="video", runs_dir=runs, data_dir=tiny_video_data,
        log=lambda msg, **_: lines.append(str(msg)),
    )  # fmt: skip


def _outputs_text(notebook: Path) -> str:
    nb = nbformat.read(notebook, as_version=4)
    return "\n".join(
        o.get("text", "") if isinstance(o.get("text"), str) else "".join(o.get("text", []))
        for c in nb.cells
        for o in c.get("outputs", [])
        if o.get("output_type") == "stream"
    )


def test_06_on_image_data_says_there_is_no_video(notebook_run: NotebookRun) -> None:
    run = notebook_run.root
    metrics = read_json(run / "metrics.json")
    assert metrics["video_inspect"]["status"] == "skipped" and metrics["video_inspect"]["reason"].startswith("no video")
    assert metrics["video"]["status"] == "skipped" and metrics["video"]["reason"].startswith("no video clips")
    assert not list((run / "figures").glob("06_*.png")) and not (run / "figures" / "03_video_roc.png").exists()
    assert "no video in 'test'" in _outputs_text(run / "executed" / "06_video.ipynb")


def test_videos_become_clips_that_train_evaluate_and_explain(video_run: Path, tiny_video_data: Path) -> None:
    metrics = read_json(video_run / "metrics.json")
    figures = {p.stem for p in (video_run / "figures").glob("*.png")}

    # 01: every video of every split cut into 2 clips of T frames; the clips show in a figure
    prep = metrics["data"]["prepared"]
    assert prep["steps"] == ["clips"] and prep["clips"]["videos"] == 18 and prep["clips"]["clips"] == 36
    assert prep["clips"]["settings"]["frames"] == TINY_FRAMES and prep["clips"]["left_out"] == []
    assert metrics["data"]["counts"]["train"] == {"real": 8 + 6, "fake": 4 + 6}  # images + clips
    assert "01_clips" in figures

    # 02: the model is a clip model, and the checkpoint says how videos were cut
    ckpt = load_checkpoint(video_run / "checkpoints" / "best_model.pth")
    assert ckpt["config"]["frames"] == TINY_FRAMES
    assert ckpt["clips"] == {k: v for k, v in prep["clips"]["settings"].items() if k != "format"}
    assert ckpt["clips"]["frames"] == TINY_FRAMES and ckpt["clips"]["faces"] is None

    # 03: frame-, clip- and video-level numbers on the report split
    video = metrics["video"]
    assert video["status"] == "done" and set(video["levels"]) == {
        "frame", "clip", "video_lstm", "video_frame_mean", "video_frame_max", "video_sbi", "video_confident_mean",
    }  # fmt: skip
    n = {k: v["n"] for k, v in video["levels"].items()}
    assert n["clip"] == 12 and n["frame"] == 12 * TINY_FRAMES and n["video_lstm"] == n["video_frame_max"] == 6
    assert {v["label"] for v in video["videos"]} == {0, 1} and all(v["clips"] == 2 for v in video["videos"])
    for level in video["levels"].values():
        assert 0.0 <= level["auc"] <= 1.0
    assert "03_video_roc" in figures

    # 06: a table of videos, then the timeline, frames and Grad-CAM of one of them
    inspect = metrics["video_inspect"]
    assert inspect["split"] == "test" and len(inspect["videos"]) == 4 and inspect["errors"] == []
    assert [v["label"] for v in inspect["videos"]] == ["fake", "real", "fake", "real"]
    for row in inspect["videos"]:
        assert 0.0 <= row["probability"] <= 1.0 and row["probability"] == row["lstm"] and row["clips"] == 2
    assert {"06_timeline", "06_frames", "06_gradcam_frames"} <= figures
    json.dumps(metrics)  # plain JSON all through

    summary = (video_run / "summary.md").read_text()
    assert "## Videos: frame and video level" in summary and "- video clips (4 frames" in summary
    assert "![06_timeline](figures/06_timeline.png)" in summary
