# ssassoc worker image. Build: docker build -t ssassoc .   Run: docker run ssassoc worker --help
# Not built on the development machine (no Docker engine there); see docs/worker.md.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY core ./core
COPY worker ./worker
COPY schemas ./schemas
# a C compiler for the compiled cone-query kernel (Cython comes from the build requirements)
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
RUN pip install --no-cache-dir --upgrade pip \
 && pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
# librdkafka ships inside the confluent-kafka wheel; nothing else is needed at run time.
RUN useradd --create-home --uid 10001 ssassoc
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER ssassoc
WORKDIR /home/ssassoc
ENV PYTHONUNBUFFERED=1 \
    SSASSOC_LOG_FORMAT=json \
    SSASSOC_HEALTH_HOST=0.0.0.0 \
    SSASSOC_HEALTH_PORT=8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=3).status != 200)"
ENTRYPOINT ["ssassoc"]
CMD ["worker"]
