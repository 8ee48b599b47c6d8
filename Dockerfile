# Commons: a Matrix bot for self-organising communities.
FROM python:3.11-slim

# MPLCONFIGDIR: matplotlib (the report's chart) needs a writable cache folder.
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 MPLCONFIGDIR=/tmp/matplotlib
RUN useradd --create-home --uid 10001 commons
WORKDIR /app
COPY pyproject.toml README.md constraints.txt ./
COPY bot ./bot
COPY commands ./commands
COPY consensus ./consensus
RUN pip install --no-cache-dir --constraint constraints.txt . \
    && mkdir -p /data /config && chown commons:commons /data

USER commons
VOLUME ["/data"]
ENTRYPOINT ["commons", "run", "--config", "/config/config.yaml"]
