# syntax=docker/dockerfile:1
# Punchline image for api, worker and migrate (see docker-compose.yml).

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# A compiler only in this stage, for any dependency without a wheel.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY . .
RUN pip install .

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN groupadd --system --gid 10001 punchline \
    && useradd --system --uid 10001 --gid punchline --home-dir /app --create-home punchline
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
USER punchline:punchline
EXPOSE 8000 9100
CMD ["punchline", "--help"]
