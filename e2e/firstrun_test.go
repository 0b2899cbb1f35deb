package e2e

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestFirstRunCreatesTokenAndKey: `kod serve` on a new data dir without
// KOD_ADMIN_TOKEN or KOD_ENCRYPTION_KEY creates both next to the data dir
// (mode 0600), logs where they are and never what they are; the token
// works, secrets work, and a restart reuses both files.
func TestFirstRunCreatesTokenAndKey(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", []string{"KOD_ADMIN_TOKEN=", "KOD_API_TOKEN=", "KOD_ENCRYPTION_KEY="})
	tokenFile, keyFile := filepath.Join(s.Home, "admin-token"), filepath.Join(s.Home, "encryption-key")
	read := func(path string) string {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatalf("%s: %v\n%s", path, err, s.Logs())
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", path, fi.Mode().Perm())
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(data))
	}
	token, key := read(tokenFile), read(keyFile)
	logs := s.Logs()
	if !strings.HasPrefix(token, "kod_") || len(token) < 30 || len(key) < 32 {
		t.Errorf("token %d chars, key %d chars", len(token), len(key))
	}
	if !strings.Contains(logs, "created the admin token") || !strings.Contains(logs, "path="+tokenFile) || !strings.Contains(logs, "path="+keyFile) {
		t.Errorf("the log does not say where the token and key are:\n%s", logs)
	}
	if strings.Contains(logs, token) || strings.Contains(logs, key) {
		t.Errorf("the log shows the token or the key:\n%s", logs)
	}
	s.mustDo("POST", "/repos", token, map[string]string{"name": "first"}, http.StatusCreated, nil)
	s.mustDo("PUT", "/repos/first/secrets/API_KEY", token, map[string]string{"value": "v1"}, http.StatusOK, nil)

	s.Stop()
	s.Restart()
	if read(tokenFile) != token || read(keyFile) != key {
		t.Errorf("a restart replaced the token or key file")
	}
	if !strings.Contains(s.Logs(), "using the admin token from its file") {
		t.Errorf("restart log:\n%s", s.Logs())
	}
	s.mustDo("GET", "/repos/first", token, nil, http.StatusOK, nil)
	// The stored secret is still readable with the reused key: another
	// PUT would be refused with a key that does not match.
	s.mustDo("PUT", "/repos/first/secrets/OTHER", token, map[string]string{"value": "v2"}, http.StatusOK, nil)
}

// TestPortInUseCreatesNothing: with the HTTP (or SSH) port taken, `kod
// serve` fails naming the address, and nothing was created in its home.
func TestPortInUseCreatesNothing(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	for name, args := range map[string][]string{
		"http": {"--port", itoa(port), "--no-ssh"},
		"ssh":  {"--port", "0", "--ssh-host", "127.0.0.1", "--ssh-port", itoa(port)},
	} {
		t.Run(name, func(t *testing.T) {
			home := filepath.Join(t.TempDir(), "home")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, kodBin, append([]string{"serve", "--host", "127.0.0.1"}, args...)...)
			cmd.Env = append(os.Environ(), "KOD_HOME="+home, "KOD_DATA_DIR=", "KOD_REPOS_DIR=", "KOD_ADMIN_TOKEN=", "KOD_ENCRYPTION_KEY=", "KOD_CONFIG=")
			out, err := cmd.CombinedOutput()
			if err == nil || ctx.Err() != nil || !strings.Contains(string(out), "127.0.0.1:"+itoa(port)) {
				t.Fatalf("kod serve on a taken port: %v\n%s", err, out)
			}
			if _, err := os.Stat(home); !os.IsNotExist(err) {
				entries, _ := os.ReadDir(home)
				t.Errorf("the home exists after the failed start (%v): %v", err, entries)
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
