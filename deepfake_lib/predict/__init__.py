"""Scoring new files: predictors (PyTorch, ONNX), folders, faces and videos.

The public names below load their module on first use (``import deepfake_lib.predict`` stays light).
"""

from deepfake_lib.core.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "folder": ("FolderResult", "predict_folder", "predict_folder_faces"),
        "onnx_predictor": ("OnnxModelError", "OnnxPredictor"),
        "predictors": ("find_checkpoint", "BasePredictor", "Predictor"),
        "results": (
            "PredictError",
            "NoFaceError",
            "decide",
            "Prediction",
            "FaceScore",
            "FacePrediction",
            "BatchScores",
        ),
        "video": ("NoClipError", "FrameScore", "VideoPrediction", "predict_video", "timeline_figure", "predict_videos"),
        "timing": ("VideoTiming", "time_video"),
    },
)
