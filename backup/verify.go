package backup

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Verify reads a whole archive without unpacking it and returns its
// manifest and what its end entry counts. It fails (ErrBadArchive) on a
// damaged or truncated archive, or one of a newer format.
func Verify(r io.Reader) (*Manifest, *Summary, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrBadArchive, err)
	}
	tr := tar.NewReader(gz)
	m, err := readManifest(tr)
	if err != nil {
		return nil, nil, err
	}
	var e *end
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %v", ErrBadArchive, err)
		}
		if hdr.Name == endName {
			e = &end{}
			if err := json.NewDecoder(io.LimitReader(tr, 1<<20)).Decode(e); err != nil {
				return nil, nil, fmt.Errorf("%w: end marker: %v", ErrBadArchive, err)
			}
		}
	}
	if _, err := io.Copy(io.Discard, gz); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrBadArchive, err)
	}
	if e == nil {
		return nil, nil, fmt.Errorf("%w: the archive is truncated (no end marker)", ErrBadArchive)
	}
	return m, &Summary{Manifest: *m, Files: e.Files, Bytes: e.Bytes}, nil
}
