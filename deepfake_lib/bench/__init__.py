"""Speed benchmark: images/s of the bare EfficientNet backbone (the reference) vs. the workbench, in one run.

    python -m deepfake_lib.bench [--image-size 224] [--batch-size 32] [--device auto] [--threads N]

Rows: (a) bare efficientnet-pytorch forward, (b) full EfficientNetLSTM forward, (b'') the same with the
frequency branch, (c) folder prediction from JPEG files (decode + transforms + model, no heatmaps), (c-device)
the same with the JPEGs decoded on the device (``DECODE="device"``, the default on CUDA), (c') the same
through the exported ONNX model in onnxruntime (when the ``[onnx]`` extra is installed), (e) video scoring,
(f) spectra of a JPEG folder (decode + FFT + DCT, what notebook 07 and the spectral baseline read), (g) training
batches from a JPEG folder as they are, (g-device) decoded and augmented on the device, and (g') as self-blended
pseudo-fakes (``FAKES`` in 02), (d) training
step at the default freezing and with the whole backbone trainable, (d'') the latter with the frequency branch,
(h) the whole-backbone training step on ``--processes`` DDP processes (the same batch per process, as forked by
02's ``NUM_PROCESSES``; on the CPU each process gets one thread), with its throughput as a ratio to (d'); peak memory. Median of ``--repeats`` timed runs after warm-up.

The public names below load their module on first use (``import deepfake_lib.bench`` stays light).
"""

from deepfake_lib.core.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "timing": ("timed", "peak_rss_mb"),
        "model_steps": ("bench_bare_backbone", "bench_full_model", "bench_training", "bench_processes"),
        "file_steps": (
            "bench_spectra",
            "bench_training_batches",
            "bench_folder",
            "bench_folder_onnx",
            "bench_video",
            "bench_footage",
        ),
        "run": ("run_bench",),
        "results": ("format_table",),
    },
)
