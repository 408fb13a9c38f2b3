"""Executing the notebooks: papermill's kernel options, and each selected notebook run in order into the run
folder's ``executed/``, with one line (and a live progress line) per notebook."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepfake_lib.core.progress import live_progress
from deepfake_lib.core.runs import project_root
from deepfake_lib.pipeline.errors import PipelineError

EXECUTED_DIR = "executed"


def kernel_options(verbose: bool = False) -> dict[str, Any]:
    """papermill/nbclient options for the notebook kernels.

    On POSIX the kernel talks to papermill over Unix-domain sockets (``ipc``), not plain-text TCP on loopback,
    so the kernel has no reason to warn "Kernel is running over TCP without encryption". Windows has no ``ipc``
    transport: there the kernel keeps TCP and, unless ``verbose``, logs errors only.

    jupyter_client interrupts a kernel (SIGINT) before every shutdown. After the last cell the kernel is idle and a
    shutdown request ends it, but a SIGINT that lands while it finishes its last message makes it log
    "KeyboardInterrupt caught in kernel" (seen about once in 30 runs): the manager skips that interrupt. A kernel
    that does not stop within a second is still killed.
    """
    if os.name == "posix":
        from jupyter_client.manager import AsyncKernelManager
        from traitlets import CaselessStrEnum, default

        class IPCKernelManager(AsyncKernelManager):
            transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)

            @default("ip")
            def _private_socket_base(self) -> str:
                # jupyter_client's default is "kernel-ipc" in the working folder, numbered by which names exist:
                # two kernels started at once from one folder (two pipelines, parallel tests) picked the same
                # sockets and read each other's messages ("Invalid Signature"). A private folder per kernel.
                return str(Path(tempfile.mkdtemp(prefix="deepfake-kernel-")) / "k")

            def cleanup_ipc_files(self) -> None:
                super().cleanup_ipc_files()
                with contextlib.suppress(OSError):
                    Path(self.ip).parent.rmdir()

            async def _async_interrupt_kernel(self) -> None:
                if not self.shutting_down:
                    await super()._async_interrupt_kernel()

        return {"kernel_manager_class": IPCKernelManager}
    return {} if verbose else {"extra_arguments": ["--IPKernelApp.log_level=ERROR"]}


@dataclass
class StepResult:
    notebook: str
    seconds: float
    executed: Path


def _execute_steps(
    available: dict[str, Path],
    selected: list[str],
    given: dict[str, dict[str, Any]],
    run_dir: Path,
    log,
    verbose: bool,
) -> list[StepResult]:
    """Run the ``selected`` notebooks in order with their ``given`` parameters into ``run_dir/executed/``, one
    ``log`` line each; ``PipelineError`` names the notebook and the failing cell (the partial executed notebook
    stays)."""
    import papermill as pm

    executed_dir = run_dir / EXECUTED_DIR
    results: list[StepResult] = []
    for i, key in enumerate(selected, 1):
        nb = available[key]
        out = executed_dir / nb.name
        nb_params = given[key]
        label = f"[{i}/{len(selected)}] {nb.stem}"
        if verbose:
            log(f"{label} ...", flush=True)
        t0 = time.perf_counter()
        try:
            with live_progress(run_dir, label, log, verbose):  # the epoch at work, until the notebook ends
                pm.execute_notebook(
                    str(nb), str(out), parameters=nb_params, kernel_name="python3", cwd=str(project_root()),
                    progress_bar=False, log_output=verbose, **kernel_options(verbose),
                )  # fmt: skip
        except pm.PapermillExecutionError as exc:
            log(f"{label} FAILED", flush=True)
            raise PipelineError(
                f"{nb.name} failed in cell {exc.exec_count or exc.cell_index} ({exc.ename}: "
                f"{str(exc.evalue).strip().splitlines()[0] if str(exc.evalue).strip() else ''}); "
                f"partial executed notebook: {out}"
            ) from None
        dt = time.perf_counter() - t0
        results.append(StepResult(nb.name, dt, out))
        log(f"{label} ok ({dt:.1f} s)", flush=True)
    return results
