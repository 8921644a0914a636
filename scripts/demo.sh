#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh), then makes a demo short offline from generated sample
# footage and prints where the MP4 is. Pass --lang zh for a Chinese one.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/reelbot demo "$@"
