package gitsvc

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// checkoutTempPrefix begins the names of the temporary folders (in
// os.TempDir) a checkout writes its pack and index in.
const checkoutTempPrefix = "kod-checkout-"

// holdTemp takes a shared flock on dir for as long as a checkout uses it;
// SweepCheckoutTemps leaves folders so held alone. The lock goes with the
// process, however it ends.
func holdTemp(dir string) (release func(), err error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

// SweepCheckoutTemps removes the checkout folders (kod-checkout-* in
// os.TempDir) a process killed mid-checkout left: those last changed
// before `before` (the server's start) that no checkout holds, whatever
// process runs it. It returns how many it removed; a folder it cannot
// remove is reported in the error and the others still go.
func SweepCheckoutTemps(before time.Time) (int, error) {
	return sweepCheckoutTemps(os.TempDir(), before)
}

func sweepCheckoutTemps(tmp string, before time.Time) (int, error) {
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return 0, err
	}
	var errs []error
	removed := 0
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), checkoutTempPrefix) {
			continue
		}
		info, err := e.Info()
		if err != nil || !info.ModTime().Before(before) {
			continue // gone meanwhile, or made since the start
		}
		dir := filepath.Join(tmp, e.Name())
		ok, err := removeUnheld(dir)
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			removed++
		}
	}
	return removed, errors.Join(errs...)
}

// removeUnheld removes dir unless a checkout holds it.
func removeUnheld(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, nil // gone meanwhile
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return false, nil // in use
	}
	if err := os.RemoveAll(dir); err != nil {
		return false, err
	}
	return true, nil
}
