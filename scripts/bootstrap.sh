#!/usr/bin/env bash
# Creates (or brings up to date) the project's virtual environment, idempotently.
#
#   scripts/bootstrap.sh            # .venv with the CPU onnxruntime
#   ANIL_EDGE_ORT=gpu scripts/bootstrap.sh   # .venv with onnxruntime-gpu instead
#
# onnxruntime and onnxruntime-gpu install the same module and overwrite each
# other: exactly one of them is ever installed here (the other is removed).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${VENV:-.venv}
flavour=${ANIL_EDGE_ORT:-cpu}
case "$flavour" in
    cpu) other=onnxruntime-gpu ;;
    gpu) other=onnxruntime ;;
    *) echo "ANIL_EDGE_ORT must be 'cpu' or 'gpu', found '$flavour'" >&2; exit 2 ;;
esac

stamp="$venv/.anil-edge-bootstrap"
want="$flavour $(cat pyproject.toml scripts/bootstrap.sh scripts/build_learn2learn.sh | sha256sum | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi

[ -x "$venv/bin/python" ] || "${PYTHON:-python3}" -m venv "$venv"
py="$venv/bin/python"
log="$venv/setup.log"  # pip's and the builds' own output (deprecation notices, build logs): kept, not shown
: > "$log"
echo "setting up $venv (onnxruntime flavour: $flavour); the first time takes a few minutes; details in $log" >&2

step() {  # step WHAT COMMAND...: runs COMMAND with its output in the log; on failure shows the log's end
    echo "  $1" >&2
    shift
    if ! "$@" >>"$log" 2>&1; then
        echo "setup failed; the last lines of $log:" >&2
        tail -n 25 "$log" >&2
        exit 1
    fi
}

step "pip, setuptools" "$py" -m pip install --quiet --upgrade "pip>=24" "setuptools>=68" wheel
# torch 2.14.1 + torchvision 0.29.1: a matching pair (torch 2.13.0's CPU file has no working torchvision).
step "torch 2.14.1, torchvision 0.29.1" "$py" -m pip install --quiet torch==2.14.1 torchvision==0.29.1
step "learn2learn 0.2.0 (built for this Python)" bash scripts/build_learn2learn.sh "$py"
"$py" -m pip uninstall --quiet --yes "$other" >>"$log" 2>&1 || true
step "anil-edge and its extras" "$py" -m pip install --quiet -e ".[train,images,timm,lite0,dev,$flavour]"
step "pip check" "$py" -m pip check
echo "$want" > "$stamp"
echo "done: 'source $venv/bin/activate' puts anil-edge on your PATH" >&2
