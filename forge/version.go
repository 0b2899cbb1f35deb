package forge

// Version is kod's release, set when building with
// -ldflags "-X github.com/kod-forge/kod/forge.Version=v1.2.3"; "dev"
// otherwise. Backups record it.
var Version = "dev"
