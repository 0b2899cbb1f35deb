package gitsvc

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The sweep at start removes checkout folders a killed server left, and
// leaves those a running checkout holds, those made since the start and
// everything else.
func TestSweepCheckoutTemps(t *testing.T) {
	tmp := t.TempDir()
	mk := func(name string, age time.Duration) string {
		dir := filepath.Join(tmp, name)
		if err := os.MkdirAll(filepath.Join(dir, "pack"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "pack", "x.pack"), []byte("pack"), 0o600); err != nil {
			t.Fatal(err)
		}
		at := time.Now().Add(-age)
		if err := os.Chtimes(dir, at, at); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	left := mk(checkoutTempPrefix+"left", time.Hour)
	held := mk(checkoutTempPrefix+"held", time.Hour)
	fresh := mk(checkoutTempPrefix+"fresh", -time.Minute)
	other := mk("kod-other-1", time.Hour)
	release, err := holdTemp(held)
	if err != nil {
		t.Fatal(err)
	}
	defer release()

	n, err := sweepCheckoutTemps(tmp, time.Now())
	if err != nil || n != 1 {
		t.Errorf("sweep = %d, %v; want 1 removed", n, err)
	}
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Errorf("the leftover folder is still there (%v)", err)
	}
	for _, dir := range []string{held, fresh, other} {
		if _, err := os.Stat(dir); err != nil {
			t.Errorf("%s was removed: %v", filepath.Base(dir), err)
		}
	}

	release()
	if n, err := sweepCheckoutTemps(tmp, time.Now()); err != nil || n != 1 {
		t.Errorf("after the checkout let go: sweep = %d, %v; want 1 removed", n, err)
	}
}
