"""Video scoring before and after issue 26's changes, per resolution, in one run (so the ratios compare).

    MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=17179869184 \
        python benchmarks/videos/before_after.py --seconds 30 --out DIR

"before": OpenCV's sequential reader and MTCNN on full-resolution frames (20 px faces and up); "after": the
defaults (PyAV keyframe seeks, MTCNN at ``DETECT_LONG_SIDE`` with ``VIDEO_MIN_FACE``). Each: 32 frames of a
``--seconds`` camera file (``demo.footage``), face tracks, a single-frame face model at 224 px, Grad-CAM of the
top frame; ``predict.timing.time_video`` splits the time. Writes ``before_after.json`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--resolutions", default="480,720,1080")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    t0 = time.perf_counter()
    import torch

    from deepfake_lib.bench.inputs import FOOTAGE
    from deepfake_lib.data.faces import VIDEO_MIN_FACE, FaceDetector
    from deepfake_lib.demo.footage import write_footage
    from deepfake_lib.models import EfficientNetLSTM, ModelConfig
    from deepfake_lib.predict.predictors import Predictor
    from deepfake_lib.predict.timing import time_video
    from deepfake_lib.predict.video import VIDEO_FRAMES, predict_video, settings_for

    imports = time.perf_counter() - t0
    t0 = time.perf_counter()
    model = EfficientNetLSTM(ModelConfig(pretrained=False, image_size=224)).eval()
    predictor = Predictor(model, 224, faces={"margin": 1.3, "size": 224})
    settings = settings_for(predictor, True, VIDEO_FRAMES)
    build = time.perf_counter() - t0
    results = {"imports_s": imports, "model_build_s": build, "threads": torch.get_num_threads(), "rows": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for res in (int(r) for r in args.resolutions.split(",")):
            path = write_footage(Path(tmp) / f"{res}.mp4", *FOOTAGE[res], seconds=args.seconds)
            for name, reader, detector in (
                ("before", "opencv", FaceDetector(work_size=None)),
                ("after", "pyav", FaceDetector(min_face_share=VIDEO_MIN_FACE)),
            ):
                os.environ["DEEPFAKE_VIDEO_READER"] = reader
                predict_video(predictor, path, settings, detector)  # warm-up
                t = time_video(predictor, path, settings, detector, repeats=2).to_dict()
                results["rows"][f"{res}p_{name}"] = t
                print(
                    f"{res}p {name}: decode {t['decode']:.2f} s, faces {t['faces']:.2f} s, model {t['model']:.2f} s, "
                    f"total {t['total']:.2f} s, {t['frames_per_s']:.1f} frames/s",
                    flush=True,
                )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "before_after.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"imports {imports:.2f} s, model built {build:.2f} s")


if __name__ == "__main__":
    main()
