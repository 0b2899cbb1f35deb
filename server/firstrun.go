package server

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/kod-forge/kod/config"
)

// serverSecret is a value `kod serve` needs that can live in a file next
// to the data dir when it is not configured.
type serverSecret struct {
	file    string  // base name, in the parent of the data dir
	setting string  // the environment variable that overrides the file
	value   *string // in the config
	newVal  func() (string, error)
	what    string // for logs
}

// fillServerSecrets fills cfg.AdminToken and cfg.EncryptionKey, when they
// are not configured, from <data dir>/../admin-token and
// <data dir>/../encryption-key. On a first start (no <data dir>/kod.db
// yet) it creates the missing files, mode 0600, with fresh random values
// and logs where they are (never the values). A data dir that already has
// a database (an upgrade, a restored backup) gets no new value: the token
// and key belong to that database. It returns the paths it created.
func fillServerSecrets(cfg *config.Config, dataDir string, log *slog.Logger) ([]string, error) {
	home := filepath.Dir(dataDir)
	_, err := os.Stat(filepath.Join(dataDir, "kod.db"))
	firstStart := errors.Is(err, fs.ErrNotExist)
	var created []string
	for _, s := range []serverSecret{
		{"admin-token", "KOD_ADMIN_TOKEN", &cfg.AdminToken, newAdminToken, "admin token"},
		{"encryption-key", "KOD_ENCRYPTION_KEY", &cfg.EncryptionKey, newEncryptionKey, "encryption key of secrets"},
	} {
		if *s.value != "" {
			continue
		}
		path := filepath.Join(home, s.file)
		data, err := os.ReadFile(path)
		switch {
		case err == nil:
			v := strings.TrimSpace(string(data))
			if v == "" {
				return created, fmt.Errorf("%s is empty: remove it or set %s", path, s.setting)
			}
			*s.value = v
			log.Info("using the "+s.what+" from its file", "path", path)
		case !errors.Is(err, fs.ErrNotExist):
			return created, fmt.Errorf("reading the %s: %w", s.what, err)
		case firstStart:
			v, err := s.newVal()
			if err != nil {
				return created, err
			}
			if err := writeSecretFile(path, v); err != nil {
				return created, fmt.Errorf("creating the %s: %w", s.what, err)
			}
			*s.value = v
			created = append(created, path)
			log.Info("created the "+s.what+" (mode 0600); set "+s.setting+" to use another", "path", path)
		}
	}
	return created, nil
}

// writeSecretFile creates path (and its directory) with value, mode 0600;
// it never replaces an existing file.
func writeSecretFile(path, value string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(value + "\n"); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

// newAdminToken is "kod_" and 40 hex digits (160 random bits).
func newAdminToken() (string, error) {
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "kod_" + hex.EncodeToString(b), nil
}

// newEncryptionKey is 256 random bits, base64url without padding.
func newEncryptionKey() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
