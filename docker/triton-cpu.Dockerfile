# The cpu profile's Triton image (issue #12): the tritonserver of the nvidia-pytriton 0.7.0 wheel (Triton 2.51.0,
# python backend only) with the cpu model repository generated inside the build at /opt/imgsel/model_repository.
# The chart (values-cpu.yaml) runs it with `command: []`: the ENTRYPOINT adds the backend and cache directories and
# passes on the chart's arguments (--model-repository, ports, --exit-timeout-secs, ...). Runs as uid 1000.
#
#   python -m tools.images build triton-cpu     # what `make images` runs
#   podman build -f docker/triton-cpu.Dockerfile --ignorefile docker/Dockerfile.dockerignore \
#     --build-context wheelhouse=.cache/images/wheelhouse -t localhost/imgsel-triton-cpu:0.1.0 .
#
# Wheels come from the wheelhouse build context (see docker/Dockerfile); versions are requirements.lock's.

ARG BASE_IMAGE=localhost/imgsel-base:bookworm

# The environment the python-backend models run in (EXECUTION_ENV_PATH in every model config).
FROM ${BASE_IMAGE} AS venv
COPY requirements.lock docker/triton-requirements.txt docker/repository-requirements.txt /tmp/requirements/
RUN --mount=type=bind,from=wheelhouse,target=/wheels \
    python3 -m venv /opt/imgsel/venv \
 && /opt/imgsel/venv/bin/pip install --no-index --find-links=/wheels --no-cache-dir --quiet \
      -c /tmp/requirements/requirements.lock -r /tmp/requirements/triton-requirements.txt \
 && /opt/imgsel/venv/bin/pip check

# The cpu model repository, generated here: ONNX export needs torch, which stays in this stage. Its configs name the
# image's paths (--env-path, --project-root), so the models run against the venv and sources of the final image.
FROM venv AS repository
RUN --mount=type=bind,from=wheelhouse,target=/wheels \
    /opt/imgsel/venv/bin/pip install --no-index --find-links=/wheels --no-cache-dir --quiet \
      -c /tmp/requirements/requirements.lock -r /tmp/requirements/repository-requirements.txt
WORKDIR /opt/imgsel
COPY contract contract
COPY preprocessing preprocessing
COPY build_engines build_engines
RUN /opt/imgsel/venv/bin/python -m build_engines.repository --profile cpu --out /opt/imgsel/model_repository \
      --env-path /opt/imgsel/venv --project-root /opt/imgsel

# What the final image copies: the models' venv without its installer (the repository stage above still needs pip).
FROM venv AS runtime-venv
RUN /opt/imgsel/venv/bin/pip uninstall --yes --quiet pip setuptools

# tritonserver from the wheel, unpacked as `make triton` does (build_engines/triton_server.py), and a backend
# directory of the stub for this Python (it is looked up only at <backend-directory>/python/).
FROM ${BASE_IMAGE} AS server
COPY build_engines/triton_server.py /tmp/triton_server.py
RUN --mount=type=bind,from=wheelhouse,target=/wheels \
    python3 -c "import sys; sys.path.insert(0, '/tmp'); from pathlib import Path; from triton_server import unpack; \
unpack(next(Path('/wheels').glob('nvidia_pytriton-0.7.0-*.whl')), Path('/opt/tritonserver'))" \
 && server=/opt/tritonserver/pytriton/tritonserver \
 && stubs="$server/python_backend_stubs/$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')" \
 && mkdir -p /opt/tritonserver/backends/python \
 && cp "$server/backends/python/libtriton_python.so" "$server/backends/python/triton_python_backend_utils.py" \
       "$stubs/triton_python_backend_stub" /opt/tritonserver/backends/python/ \
 && rm -r "$server/python_backend_stubs" "$server/backends"

FROM ${BASE_IMAGE}
ARG UID=1000
RUN groupadd --gid ${UID} triton-server \
 && useradd --uid ${UID} --gid ${UID} --create-home --home-dir /home/triton-server --shell /usr/sbin/nologin triton-server
COPY --from=runtime-venv /opt/imgsel/venv /opt/imgsel/venv
COPY --from=server /opt/tritonserver /opt/tritonserver
WORKDIR /opt/imgsel
COPY contract contract
COPY runtime runtime
COPY preprocessing preprocessing
# The code the python models share (request batching, the onnxruntime session), not the rest of build_engines.
COPY build_engines/__init__.py build_engines/__init__.py
COPY build_engines/triton_python build_engines/triton_python
COPY --from=repository /opt/imgsel/model_repository model_repository
RUN /opt/imgsel/venv/bin/python -m compileall -q contract runtime preprocessing build_engines model_repository
COPY docker/triton-entrypoint.sh /usr/local/bin/triton-entrypoint.sh
ENV PYTHONDONTWRITEBYTECODE=1
USER ${UID}:${UID}
EXPOSE 8000 8001 8002
ENTRYPOINT ["/usr/local/bin/triton-entrypoint.sh"]
CMD ["--model-repository=/opt/imgsel/model_repository", "--allow-gpu-metrics=false", "--strict-readiness=true"]
