#!/usr/bin/env bash
# Issue 12's GPU checks, prepared for a lent H100/H200 (no network there; about 9 minutes).
#
# Here, first:   benchmarks/gpu_issue12.sh fetch      (sdists and wheels into runs/wheels)
# On the GPU:    run(command="benchmarks/gpu_issue12.sh run", carry=["runs/wheels"])
#
# It builds learn2learn from the carried sdist as scripts/build_learn2learn.sh does, then
# records: the whole training loop against its bare step with the GPU's utilisation (now vs
# before), and the default recipe for 5 GPU-minutes scored within one alphabet (support and
# query by different people) beside mixed alphabets. Tables go to $OUT (or runs/gpu).
set -euo pipefail
cd "$(dirname "$0")/.."
wheels=runs/wheels
case "${1:-}" in
fetch)
    mkdir -p "$wheels"
    py=.venv/bin/python
    "$py" -m pip download --quiet --no-deps --no-binary :all: learn2learn==0.2.0 gym==0.26.2 -d "$wheels"
    "$py" -m pip download --quiet --no-deps --only-binary :all: --python-version 3.12 cloudpickle gym_notices \
        tqdm -d "$wheels"
    ls -la "$wheels";;
run)
    out=${OUT:-runs/gpu}
    mkdir -p "$out"
    py=python3
    nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$out/gpu.txt"
    "$py" -m pip install --quiet --no-index --find-links "$wheels" --no-deps --no-build-isolation cloudpickle \
        gym_notices tqdm gym==0.26.2
    work=$(mktemp -d)
    tar -xzf "$wheels"/learn2learn-0.2.0.tar.gz -C "$work"
    src="$work/learn2learn-0.2.0"
    sed -i -e "/'gsutil',/d" -e "/'qpth>=0.0.15',/d" "$src/setup.py"
    for pyx in "$src"/learn2learn/data/*.pyx; do "$py" -m cython -3 "$pyx"; done
    "$py" -m pip install --quiet --no-build-isolation --no-deps "$src"
    "$py" -m pip install --quiet --no-build-isolation --no-deps -e .
    export PYTHONUNBUFFERED=1
    timeout 150 anil-edge bench trainloop --device cuda --iterations 2000 | tee "$out/trainloop.md"
    timeout 420 anil-edge bench recipes --device cuda --minutes 5 +augment-cosine --out "$out/recipes" \
        | tee "$out/recipes.jsonl";;
*)
    echo "usage: $0 fetch|run" >&2; exit 2;;
esac
