# The kod server as an image, built from registry images (needs internet);
# scripts/build-kod-image builds the same image offline. Steps run as
# sibling containers on the host's engine through the mounted socket: see
# docker-compose.yml and docs/operations.md.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/kod ./cmd/kod

FROM debian:bookworm-slim
# git serves and imports repositories, openssh-client imports over SSH,
# ca-certificates verifies HTTPS (imports, webhooks, registries).
RUN apt-get update && apt-get install -y --no-install-recommends git openssh-client ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd -g 10001 kod && useradd -u 10001 -g 10001 -d /var/lib/kod -s /bin/sh kod \
    && mkdir -p /var/lib/kod && chown 10001:10001 /var/lib/kod && chmod 700 /var/lib/kod
COPY --from=build /out/kod /usr/local/bin/kod
ENV KOD_HOME=/var/lib/kod HOME=/var/lib/kod
USER 10001:10001
WORKDIR /var/lib/kod
VOLUME ["/var/lib/kod"]
EXPOSE 3000 2222
ENTRYPOINT ["/usr/local/bin/kod"]
CMD ["serve"]
