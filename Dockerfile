# Container Refinery as a tiny image, from a prebuilt static binary: nothing is pulled.
#
#   bash scripts/build-image.sh [TAG]     # builds the binary, stages it, then this file
#
# The build context is the repository root; scripts/build-image.sh stages target/image/ with
#   refinery   the static binary (glibc or musl, stripped)
#   rootfs/    extra files copied to / (the host's CA bundle, /tmp), possibly empty
# Users with a registry can build from source in one step instead: see Dockerfile.build.
FROM scratch

ARG VERSION=dev
LABEL org.opencontainers.image.title="Container Refinery" \
      org.opencontainers.image.description="Keeps Docker hosts exactly as a git repository says" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      io.refinery.controller="true"

COPY target/image/rootfs/ /
COPY target/image/refinery /refinery

# The engine is reached through the socket mounted at /var/run/docker.sock (or DOCKER_HOST).
# Root in the container is what opening that socket takes; the socket is root-equivalent anyway.
ENV NO_COLOR=1
WORKDIR /state
ENTRYPOINT ["/refinery"]
CMD ["run", "--repo", "/repo", "--branch", "main", "--log-format", "json", "--state-dir", "/state"]
