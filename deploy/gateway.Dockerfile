# The gateway image for deploy/kubernetes (no engine inside: the engines run in the RayService).
# Build from the repository root: docker build -f deploy/gateway.Dockerfile -t medgemma-serve-gateway:0.1.0 .
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY serve ./serve
COPY clients ./clients
COPY benchmarks ./benchmarks
COPY configs ./configs
RUN pip install --no-cache-dir . && useradd --uid 10001 --no-create-home gateway
USER 10001
EXPOSE 8000
CMD ["python", "-m", "serve", "gateway", "--profile", "/etc/medgemma/profile.yaml"]
