package backup

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// entry writes one archive entry into its staging directory. Names are
// checked to stay inside it; only directories and regular files exist in
// kod archives, anything else is refused.
func (x *extractor) entry(hdr *tar.Header, r io.Reader) error {
	name, ok := cleanName(hdr.Name)
	if !ok {
		return fmt.Errorf("%w: unsafe entry name %q", ErrBadArchive, hdr.Name)
	}
	root, rel, private := "", "", false
	switch {
	case name == endName:
		x.sawEnd = true
		return nil
	case name == dbName:
		root, rel, private = x.data, "kod.db", true
		x.sawDB = true
	case strings.HasPrefix(name, logsPrefix):
		root, rel, private = x.data, "logs/"+strings.TrimPrefix(name, logsPrefix), true
	case strings.HasPrefix(name, artsPrefix):
		root, rel, private = x.data, "artifacts/"+strings.TrimPrefix(name, artsPrefix), true
	case strings.HasPrefix(name, reposPrefix):
		root, rel = x.repos, strings.TrimPrefix(name, reposPrefix)
	case name == hostKeyName:
		root, rel, private = x.key, "host_key", true
		x.sawKey = true
	case name == hostPubName:
		root, rel = x.key, "host_key.pub"
	default:
		return fmt.Errorf("%w: unexpected entry %q", ErrBadArchive, hdr.Name)
	}
	dst := filepath.Join(root, filepath.FromSlash(rel))
	if r, err := filepath.Rel(root, dst); err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
		return fmt.Errorf("%w: entry %q leaves its directory", ErrBadArchive, hdr.Name)
	}
	dirMode, fileMode := os.FileMode(0o755), os.FileMode(0o644)
	if private {
		dirMode, fileMode = 0o700, 0o600
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		return os.MkdirAll(dst, dirMode)
	case tar.TypeReg:
		if err := os.MkdirAll(filepath.Dir(dst), dirMode); err != nil {
			return err
		}
		if hdr.Mode&0o111 != 0 && !private {
			fileMode = 0o755
		}
		return writeFile(dst, r, hdr.Size, fileMode)
	}
	return fmt.Errorf("%w: entry %q is neither a file nor a directory", ErrBadArchive, hdr.Name)
}

func writeFile(dst string, r io.Reader, size int64, mode os.FileMode) error {
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%w: %s appears twice", ErrBadArchive, dst)
	}
	if err != nil {
		return err
	}
	_, err = io.CopyN(f, r, size)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = fmt.Errorf("%w: %s is cut short", ErrBadArchive, dst)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
