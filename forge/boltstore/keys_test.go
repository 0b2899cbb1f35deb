package boltstore

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/kod-forge/kod/forge"
)

func TestKeysUniqueByFingerprintAcrossUsers(t *testing.T) {
	s, path := open(t)
	ctx := context.Background()
	a := &forge.SSHKey{ID: "k1", Username: "alice", Fingerprint: "SHA256:aaa", CreatedAt: 1}
	if err := s.CreateKey(ctx, a); err != nil {
		t.Fatal(err)
	}
	// The same key for another user, at the same time from many requests:
	// exactly none wins.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.CreateKey(ctx, &forge.SSHKey{ID: forge.NewID(), Username: "bob", Fingerprint: "SHA256:aaa", CreatedAt: int64(i)})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, forge.ErrConflict) || err.Error() != "SSH key already exists" {
			t.Errorf("duplicate fingerprint: %v", err)
		}
	}
	s.CreateKey(ctx, &forge.SSHKey{ID: "k2", Username: "bob", Fingerprint: "SHA256:bbb", CreatedAt: 2})
	s.CreateKey(ctx, &forge.SSHKey{ID: "k3", Username: "alice", Fingerprint: "SHA256:ccc", CreatedAt: 3})
	if k, err := s.KeyByFingerprint(ctx, "SHA256:bbb"); err != nil || k.ID != "k2" || k.Username != "bob" {
		t.Errorf("by fingerprint: %+v %v", k, err)
	}
	if keys, _ := s.ListKeys(ctx, "alice"); len(keys) != 2 || keys[0].ID != "k1" || keys[1].ID != "k3" {
		t.Errorf("alice's keys: %+v", keys)
	}
	if keys, _ := s.ListKeys(ctx, ""); len(keys) != 3 {
		t.Errorf("all keys: %+v", keys)
	}
	if err := s.DeleteKey(ctx, "k1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.KeyByFingerprint(ctx, "SHA256:aaa"); !errors.Is(err, forge.ErrNotFound) {
		t.Errorf("deleted key still found by fingerprint: %v", err)
	}
	if err := s.DeleteKey(ctx, "k1"); !errors.Is(err, forge.ErrNotFound) || err.Error() != "SSH key not found" {
		t.Errorf("second delete: %v", err)
	}
	// The fingerprint is free again, and everything survives a reopen.
	if err := s.CreateKey(ctx, &forge.SSHKey{ID: "k4", Username: "bob", Fingerprint: "SHA256:aaa", CreatedAt: 4}); err != nil {
		t.Errorf("re-adding a removed key: %v", err)
	}
	s.Close()
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if keys, _ := s2.ListKeys(ctx, "bob"); len(keys) != 2 {
		t.Errorf("after reopen: %+v", keys)
	}
}
