ARG GO=1.21
FROM --platform=$BUILDPLATFORM golang:${GO} AS builder
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/root/.cache --network=none go build -o /out/app
FROM builder as test
RUN --mount=type=bind,from=builder,source=/out,target=/mnt go test
FROM scratch
COPY --from=builder /out/app /app
COPY --from=0 /etc/passwd /etc/passwd
ENTRYPOINT ["/app"]
