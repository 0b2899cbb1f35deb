package api

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/kod-forge/kod/backup"
)

func (s *Server) backupRoutes() {
	s.handle(http.MethodGet, "/admin/backup", actAdmin, s.backup)
}

// snapshotter is a store that can hand out its bbolt database for a
// consistent snapshot (forge/boltstore).
type snapshotter interface{ DB() *bolt.DB }

// backup is GET /admin/backup (admin; kod's addition): a gzipped tar of the
// database (one read transaction), the repositories (each from a snapshot
// of its refs), the step logs and the SSH host key, streamed while the
// server keeps serving. The archive format is package backup's; `kod
// backup` saves it and `kod restore` unpacks it. A failure after the first
// byte aborts the connection, so the client never takes a truncated archive
// for a complete one (it also lacks its end marker).
func (s *Server) backup(w http.ResponseWriter, r *http.Request, c *call) error {
	snap, ok := s.Store.(snapshotter)
	if !ok {
		return errors.New("backup: the store cannot take snapshots")
	}
	name := fmt.Sprintf("kod-backup-%s.tar.gz", time.Now().UTC().Format("20060102-150405"))
	w.Header().Set("Content-Type", "application/gzip")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	sum, err := backup.Write(r.Context(), w, backup.Source{
		DB: snap.DB(), ReposDir: s.ReposDir, LogsDir: s.LogsDir, HostKeyPath: s.HostKeyPath, Mode: "online", Git: s.Git,
		ArtifactsDir: s.artifactsDir(),
	})
	if err != nil {
		s.log.Error("backup failed", "err", err, "token", c.p.TokenID)
		panic(http.ErrAbortHandler)
	}
	s.log.Info("backup taken", "token", c.p.TokenID, "repos", len(sum.Manifest.Repos), "files", sum.Files, "bytes", sum.Bytes)
	return nil
}
