package sshd

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	gossh "golang.org/x/crypto/ssh"
)

// LoadOrCreateHostKey returns the SSH host key stored at path (an OpenSSH
// private key file, unencrypted). When there is no file it creates an
// ed25519 key there with mode 0600 (its directory 0700), so the server keeps
// its identity across restarts. created reports whether the key is new;
// loose reports that an existing file is readable by group or others (the
// caller should warn). A file that exists but does not hold a key is an
// error naming the path; it is never overwritten.
func LoadOrCreateHostKey(path string) (signer gossh.Signer, created, loose bool, err error) {
	data, err := os.ReadFile(path)
	if err == nil {
		signer, err = gossh.ParsePrivateKey(data)
		if err != nil {
			return nil, false, false, fmt.Errorf("SSH host key %s: %w", path, err)
		}
		info, statErr := os.Stat(path)
		return signer, false, statErr == nil && info.Mode().Perm()&0o077 != 0, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, false, fmt.Errorf("reading SSH host key: %w", err)
	}
	signer, err = createHostKey(path)
	if err != nil {
		return nil, false, false, err
	}
	return signer, true, false, nil
}

// createHostKey writes a new ed25519 key to path. It writes a 0600
// temporary file and links it into place, so a reader never sees half a
// key and two servers starting at once cannot both win.
func createHostKey(path string) (gossh.Signer, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("creating the SSH host key directory: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := gossh.MarshalPrivateKey(priv, "kod host key")
	if err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".ssh_host_key-*")
	if err != nil {
		return nil, fmt.Errorf("creating the SSH host key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, err
	}
	if _, err := tmp.Write(pem.EncodeToMemory(block)); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("writing the SSH host key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			signer, _, _, err := LoadOrCreateHostKey(path) // another process won the race
			return signer, err
		}
		return nil, fmt.Errorf("installing the SSH host key: %w", err)
	}
	return gossh.NewSignerFromKey(priv)
}
