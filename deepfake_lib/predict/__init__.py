"""Scoring new files: predictors (PyTorch, ONNX), folders, faces and videos.

The public names below load their module on first use (``import deepfake_lib.predict`` stays light).
"""

from deepfake_lib.core.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "folder": ("FolderResult", "heatmap_names", "predict_folder", "predict_folder_faces"),
        "onnx_predictor": (
            "ONNX_FORMAT",
            "ONNX_FORMAT_VERSION",
            "INPUT_NAME",
            "OUTPUT_NAMES",
            "NO_HEATMAP_NOTE",
            "OnnxModelError",
            "Preprocessing",
            "load_session",
            "read_metadata",
            "OnnxPredictor",
        ),
        "predictors": ("find_checkpoint", "stale_finetune_reason", "BasePredictor", "Predictor"),
        "results": (
            "HEATMAP_FILE",
            "CSV_FILE",
            "HEATMAP_DIR",
            "CSV_COLUMNS",
            "FACE_CSV_COLUMNS",
            "DEFAULT_FACE_MARGIN",
            "PredictError",
            "NoFaceError",
            "decide",
            "sigmoid",
            "Prediction",
            "FaceScore",
            "FacePrediction",
            "BatchScores",
        ),
        "video": (
            "TIMELINE_FILE",
            "IMAGE_MODEL_FRAMES",
            "VIDEO_FRAMES",
            "NoClipError",
            "FrameScore",
            "VideoPrediction",
            "settings_for",
            "pool_tracks",
            "predict_video",
            "most_suspicious",
            "split_videos",
            "write_outputs",
            "timeline_figure",
            "VideoBatch",
            "predict_videos",
            "frames_figure",
            "suspicious_frames_figure",
        ),
        "timing": ("VideoTiming", "time_video"),
    },
)
