# syntax=docker/dockerfile:1
# Airflow 3 image with ecodemo installed, for docker-compose.yml (api-server, scheduler,
# dag-processor, triggerer, celery workers, and the one-shot init service).
#
# Why not a plain `pip install ecodemo`: the official image ships Airflow with the exact dependency
# set Airflow's constraints file pins, and an unconstrained install could silently upgrade or
# downgrade any of them (SQLAlchemy, pydantic, FastAPI...). Instead we freeze what the image holds
# (`pip list --format=freeze`) and install the ecodemo wheel with that list as a constraint: pip
# may ADD the packages Airflow lacks (LightGBM, CodeCarbon, grafana-client...), but cannot change
# one Airflow already pinned. If ecodemo ever needed a different version of a pinned package, the
# build fails here, loudly, instead of shipping a broken Airflow. `pip check` then verifies the
# whole environment is consistent. This is Airflow's constraints approach, with the constraints
# taken from the image itself, so no constraints file is downloaded and none can drift.

ARG AIRFLOW_IMAGE=apache/airflow:3.3.2-python3.11

# --- stage 1: build the ecodemo wheel from this repository (pure Python, hatchling backend) ---
FROM ${AIRFLOW_IMAGE} AS wheel
USER root
RUN mkdir -p /build/src /build/dist && chown -R airflow:0 /build
USER airflow
WORKDIR /build/src
# .dockerignore keeps the context to these files: no .venv, .git, data or secrets.
COPY --chown=airflow:0 pyproject.toml README.md ./
COPY --chown=airflow:0 src ./src
# The wheel carries the sensor catalogue with its bundled snapshot, and the ladder specs.
COPY --chown=airflow:0 sensors ./sensors
COPY --chown=airflow:0 models/specs ./models/specs
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /build/dist .

# --- stage 2: the runtime image ---
FROM ${AIRFLOW_IMAGE}
# Must equal [project] version in pyproject.toml (tests/deploy checks it against a built wheel).
ARG ECODEMO_VERSION=0.1.0
LABEL org.opencontainers.image.title="ecodemo-airflow" \
      org.opencontainers.image.description="Apache Airflow 3.3.2 (Python 3.11) with ecodemo" \
      org.opencontainers.image.version="${ECODEMO_VERSION}"
COPY --from=wheel --chown=airflow:0 /build/dist/ecodemo-${ECODEMO_VERSION}-py3-none-any.whl /tmp/wheels/
RUN pip list --format=freeze > /tmp/airflow-pins.txt \
 && pip install --no-cache-dir --constraint /tmp/airflow-pins.txt \
        /tmp/wheels/ecodemo-${ECODEMO_VERSION}-py3-none-any.whl \
 && pip check \
 && ecodemo --help > /dev/null \
 && rm -rf /tmp/wheels /tmp/airflow-pins.txt
# Mount points of compose's named volumes: a new volume copies the owner and mode of its mount
# point, and the tasks run as any uid in group 0 (AIRFLOW_UID), so group 0 must be able to write.
USER root
RUN mkdir -p /opt/airflow/state /opt/airflow/grafana-dashboards \
 && chown airflow:0 /opt/airflow/state /opt/airflow/grafana-dashboards \
 && chmod 2775 /opt/airflow/state /opt/airflow/grafana-dashboards
USER airflow
# The sensor catalogue is found as ./sensors from the working directory (mounted by compose).
WORKDIR /opt/airflow
