# SPDX-License-Identifier: MIT
# PandaProxy on Alpine: build with the same steps as scripts/check, run as non-root.
#   docker build -t pandaproxy .
#   docker run -d --env-file .env -p 8883:8883 -p 990:990 -p 6000:6000 -p 322:322 \
#       -p 50000-50100:50000-50100 -v pandaproxy-state:/var/lib/pandaproxy pandaproxy

FROM alpine:3.20 AS build
RUN apk add --no-cache bash
WORKDIR /src
COPY . .
# Installs the build dependencies with apk and builds in build/ (no tests: musl has no ASan).
# The prefix is given to configure: the daemon looks for its RTSPS module there.
RUN CONFIGURE_ARGS="--prefix=/usr --sysconfdir=/etc --localstatedir=/var" \
        bash scripts/check --build-only \
    && make -C build install DESTDIR=/out

FROM alpine:3.20
# Run-time libraries only. GStreamer's TLS comes from glib-networking; rtspsrc and
# rtph264pay/depay are in -good, h264parse in -bad.
RUN apk add --no-cache libssl3 libcrypto3 cjson libjpeg-turbo libcap2 \
        glib gstreamer gst-plugins-base gst-plugins-good gst-plugins-bad gst-rtsp-server \
        glib-networking ca-certificates \
    && adduser -S -D -H -h /var/lib/pandaproxy -s /sbin/nologin -u 1000 pandaproxy \
    && mkdir -p /var/lib/pandaproxy \
    && chown pandaproxy /var/lib/pandaproxy && chmod 0700 /var/lib/pandaproxy
COPY --from=build /out/usr/bin/pandaproxy /out/usr/bin/pandaproxy-sim /usr/bin/
COPY --from=build /out/usr/lib/pandaproxy /usr/lib/pandaproxy
COPY --from=build /out/usr/share/man /usr/share/man
ENV STATE_DIR=/var/lib/pandaproxy
VOLUME /var/lib/pandaproxy
# Docker 20.10+ lets a non-root process bind ports below 1024 inside the container.
USER pandaproxy
EXPOSE 8883 990 6000 322 50000-50100
HEALTHCHECK --interval=30s --timeout=15s --start-period=30s --retries=3 \
    CMD ["pandaproxy", "--health"]
ENTRYPOINT ["pandaproxy"]
