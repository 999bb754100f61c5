# syntax=docker/dockerfile:1
# Switchboard in a container: a Swift build stage, then a slim Debian runtime that holds only
# the binary, its C libraries and the production config.
#   docker build -t switchboard .
#   docker run --rm -p 8080:8080 \
#     -v /srv/switchboard/jwt-public.pem:/etc/switchboard/jwt-public.pem:ro switchboard
# The config is config/production.yaml (Redis at redis:6379, RS256/ES256 JWTs); override keys
# with SWITCHBOARD_* variables or mount another file at /etc/switchboard/switchboard.yaml.
# Give `docker stop` more than timers.shutdown_grace (10s there): `docker stop -t 30`, or
# `stop_grace_period: 30s` in Compose.

# The builder's Debian release must be the runtime's: the binary links the libraries it was
# built against (OpenSSL 3, hiredis 0.14, libyaml, zlib on bookworm).
ARG SWIFT_VERSION=6.3
ARG DEBIAN_RELEASE=bookworm

FROM swift:${SWIFT_VERSION}-${DEBIAN_RELEASE} AS build
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
       libssl-dev libhiredis-dev libyaml-dev zlib1g-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The Swift runtime and Foundation are linked in, so the runtime image needs no Swift.
# The build folder is a cache mount: a rebuild after a source change is incremental.
RUN --mount=type=cache,target=/src/.build \
    swift build -c release --product switchboard --static-swift-stdlib \
    && install -D -m 0755 "$(swift build -c release --show-bin-path)/switchboard" /out/switchboard

FROM debian:${DEBIAN_RELEASE}-slim
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
       libssl3 libhiredis0.14 libyaml-0-2 zlib1g libstdc++6 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin switchboard
COPY --from=build /out/switchboard /usr/local/bin/switchboard
COPY config/production.yaml /etc/switchboard/switchboard.yaml
ENV SWITCHBOARD_CONFIG=/etc/switchboard/switchboard.yaml
USER switchboard
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/switchboard"]
CMD ["serve"]
