# syntax=docker/dockerfile:1
# A comment before the first instruction.
ARG BASE=busybox
FROM ${BASE}:latest AS Build
MAINTAINER Jane Doe <jane@example.com>
RUN echo "hello world" > /greeting
RUN ["/bin/sh", "-c", "echo exec form"]
CMD ["sh"]
CMD echo shell form
ENTRYPOINT ["/entry.sh", "--flag"]
ENTRYPOINT /entry.sh
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV PATH=/usr/local/bin:$PATH HOME="/root dir"
ENV LEGACY some value with spaces
LABEL org.example.version="1.0" "with space"=yes
EXPOSE 80 443/tcp 53/udp 8000-8010
COPY --from=build --chown=app:app --chmod=0644 --link a.txt b/ /dest/
COPY ["with space.txt", "/dest dir/"]
ADD --checksum=sha256:abc https://example.com/x.tar.gz /tmp/
ADD archive.tar /opt/
VOLUME /data /logs
VOLUME ["/json"]
USER app:app
WORKDIR /srv/$NAME
ARG VERSION
ARG A=1 B="two words"
ONBUILD RUN echo triggered
ONBUILD COPY --from=x a b
HEALTHCHECK --interval=5s --timeout=3s --start-period=1m --start-interval=1s --retries=3 CMD curl -f http://localhost/ || exit 1
HEALTHCHECK CMD ["/check", "--quiet"]
HEALTHCHECK NONE
STOPSIGNAL SIGTERM
