# The kod server as an image, for docker-compose.yml. Steps still run as
# sibling containers on the host's engine through the mounted socket.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/kod ./cmd/kod

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends git ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/kod /usr/local/bin/kod
ENV KOD_HOME=/var/lib/kod
VOLUME ["/var/lib/kod"]
EXPOSE 3000 2222
ENTRYPOINT ["/usr/local/bin/kod"]
CMD ["serve"]
