"""Run the numbered notebooks with papermill into ``outputs/runs/<run_id>/`` and write a run summary.

python -m deepfake_lib.pipeline --demo
python -m deepfake_lib.pipeline --data data/my_set --steps 02-05 --run-id exp1 -p EPOCHS 20 --config run.yaml

Quiet by default: one line per finished notebook and one for the summary, and while a notebook trains one
updating line with its epoch, last val AUC and time left (``core.progress``); ``-v`` also shows the notebooks' own
output and the kernels' log.

The public names below load their module on first use (``import deepfake_lib.pipeline`` stays light).
"""

from deepfake_lib.core.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "errors": ("PipelineError", "PipelineInputError"),
        "notebooks": ("notebooks_dir", "list_notebooks", "select_steps", "declared_parameters"),
        "config": ("parse_value", "load_config", "merge_parameters"),
        "checks": ("check_parameters", "parameter_problem", "check_run_id", "check_device", "check_data"),
        "execute": ("StepResult",),
        "run": ("run_pipeline",),
    },
)
