#!/bin/sh
# The cpu Triton image's entrypoint: the wheel's tritonserver with the image's python backend directory (the stub
# for this Python) and cache directory; the arguments given to the container follow (values-cpu.yaml: command []).
# The copied backend library loses its relative RPATH, so the wheel's libraries go on the library path, and the
# stub links libpython from the interpreter's LIBDIR. No pinned host memory: there is no CUDA here.
set -eu
server=/opt/tritonserver/pytriton/tritonserver
libdir=$(/opt/imgsel/venv/bin/python -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR") or "")')
export LD_LIBRARY_PATH="/opt/tritonserver/nvidia_pytriton.libs${libdir:+:$libdir}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
exec "$server/bin/tritonserver" \
  --backend-directory=/opt/tritonserver/backends \
  --cache-directory="$server/caches" \
  --pinned-memory-pool-byte-size=0 \
  "$@"
