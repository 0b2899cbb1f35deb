package docker

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"

	"github.com/kod-forge/kod/sandbox"
)

// ReadArtifacts implements sandbox.ArtifactReader. A carrier container
// (created from image, never started) mounts the workspace read-only; for
// each pattern the engine's archive of the pattern's fixed directory part
// (the components before the first with a glob character) is read and
// filtered. The engine's archives never follow links inside the tree; each
// component of the fixed part is checked not to be a link first, since the
// engine would resolve one in the carrier's own file system.
func (d *Docker) ReadArtifacts(ctx context.Context, run *sandbox.RunSpec, image string, patterns []string) (io.ReadCloser, error) {
	if err := checkRun(run); err != nil {
		return nil, err
	}
	pats, err := parsePatterns(patterns)
	if err != nil {
		return nil, err
	}
	if err := d.ensureImage(ctx, image, sandbox.PullIfNotPresent); err != nil {
		return nil, fmt.Errorf("docker: read artifacts of run %s: %w", run.ID, err)
	}
	labels := specLabels(run)
	labels[labelRole] = "artifact-carrier"
	ws := workspaceMount(run)
	ws.ReadOnly = true
	cctx, cancel, err := createContext(ctx)
	if err != nil {
		return nil, err
	}
	created, err := d.cli.ContainerCreate(cctx,
		&container.Config{Image: image, Labels: labels, Cmd: []string{"/kod-artifact-carrier"}, NetworkDisabled: true},
		&container.HostConfig{NetworkMode: "none", LogConfig: container.LogConfig{Type: "none"}, Mounts: []mount.Mount{ws}},
		nil, nil, "")
	cancel()
	if err != nil {
		return nil, engineErr("create artifact carrier for run "+run.ID, err)
	}
	rctx, rcancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := d.writeArtifacts(rctx, created.ID, pats, pw)
		pw.CloseWithError(err)
	}()
	return &artifactStream{PipeReader: pr, close: func() error {
		rcancel()
		pr.CloseWithError(errors.New("artifact stream closed"))
		<-done
		cctx, cancel := cleanupContext(ctx)
		defer cancel()
		return d.removeContainer(cctx, created.ID)
	}}, nil
}

type artifactStream struct {
	*io.PipeReader
	close func() error
}

func (s *artifactStream) Close() error { return s.close() }

// pattern is one parsed artifact pattern.
type pattern struct {
	glob    string // cleaned, relative, without a trailing "/"
	fixed   string // leading components without glob characters ("" = the workspace root)
	dirOnly bool   // written with a trailing "/": matches directories only
}

// parsePatterns checks and parses artifact patterns.
func parsePatterns(patterns []string) ([]pattern, error) {
	if len(patterns) == 0 {
		return nil, errors.New("docker: no artifact patterns")
	}
	var out []pattern
	for _, p := range patterns {
		raw := p
		dirOnly := strings.HasSuffix(p, "/")
		p = strings.TrimRight(p, "/")
		bad := func(why string) error {
			return &sandbox.StepError{Msg: fmt.Sprintf("artifact pattern %q: %s", raw, why)}
		}
		switch {
		case p == "" || p == ".":
			return nil, bad("empty (name files or directories of the workspace)")
		case strings.HasPrefix(p, "/"):
			return nil, bad("must be relative to the workspace")
		case strings.ContainsRune(p, '\\'):
			return nil, bad("backslashes are not allowed")
		}
		comps := strings.Split(p, "/")
		var fixed []string
		globbing := false
		for _, c := range comps {
			if c == ".." || c == "." || c == "" {
				return nil, bad("must not contain '.', '..' or empty components")
			}
			if _, err := path.Match(c, ""); err != nil {
				return nil, bad(err.Error())
			}
			if strings.ContainsAny(c, "*?[") {
				globbing = true
			}
			if !globbing {
				fixed = append(fixed, c)
			}
		}
		out = append(out, pattern{glob: p, fixed: strings.Join(fixed, "/"), dirOnly: dirOnly})
	}
	return out, nil
}

// writeArtifacts writes the matches of every pattern as one tar stream.
func (d *Docker) writeArtifacts(ctx context.Context, carrier string, pats []pattern, w io.Writer) error {
	tw := tar.NewWriter(w)
	seen := map[string]bool{}
	for _, p := range pats {
		if err := d.copyMatches(ctx, carrier, p, tw, seen); err != nil {
			return err
		}
	}
	return tw.Close()
}

// copyMatches adds the entries matching p to tw.
func (d *Docker) copyMatches(ctx context.Context, carrier string, p pattern, tw *tar.Writer, seen map[string]bool) error {
	// Walk the fixed part one component at a time: a link anywhere in it
	// ends the pattern (matching nothing) unless it is the whole pattern,
	// which then names the link itself.
	src := sandbox.WorkspacePath
	if p.fixed != "" {
		comps := strings.Split(p.fixed, "/")
		for i := range comps {
			cur := sandbox.WorkspacePath + "/" + strings.Join(comps[:i+1], "/")
			st, err := d.cli.ContainerStatPath(ctx, carrier, cur)
			if err != nil {
				if cerrdefs.IsNotFound(err) {
					return nil
				}
				return engineErr("stat "+cur, err)
			}
			if st.Mode&fs.ModeSymlink != 0 && i < len(comps)-1 {
				return nil
			}
		}
		src = sandbox.WorkspacePath + "/" + p.fixed
	}
	rc, _, err := d.cli.CopyFromContainer(ctx, carrier, src)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return nil
		}
		return engineErr("copy artifacts from "+src, err)
	}
	defer rc.Close()
	// The archive's names start with the base name of src; rel maps them
	// to names relative to the workspace.
	base := path.Base(src)
	parent := path.Dir(p.fixed)
	if p.fixed == "" {
		parent = ""
	}
	rel := func(name string) (string, bool) {
		name = strings.TrimSuffix(name, "/")
		if name != base && !strings.HasPrefix(name, base+"/") {
			return "", false
		}
		if p.fixed == "" {
			return strings.TrimPrefix(strings.TrimPrefix(name, base), "/"), true
		}
		if parent == "." {
			return name, true
		}
		return parent + "/" + name, true
	}
	var matchedDirs []string
	under := func(name string) bool {
		for _, dir := range matchedDirs {
			if strings.HasPrefix(name, dir+"/") {
				return true
			}
		}
		return false
	}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("docker: reading the artifact archive of %s: %w", src, err)
		}
		name, ok := rel(h.Name)
		if !ok || name == "" {
			continue
		}
		isDir := h.Typeflag == tar.TypeDir
		match := under(name)
		if !match {
			if m, _ := path.Match(p.glob, name); m && (!p.dirOnly || isDir) {
				match = true
				if isDir {
					matchedDirs = append(matchedDirs, name)
				}
			}
		}
		if !match || seen[name] {
			continue
		}
		seen[name] = true
		out := *h
		out.Name = name
		if isDir {
			out.Name += "/"
		}
		if h.Typeflag == tar.TypeLink {
			target, ok := rel(h.Linkname)
			if !ok || !seen[target] {
				continue // a hard link to a file not taken
			}
			out.Linkname = target
		}
		if err := tw.WriteHeader(&out); err != nil {
			return err
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := io.Copy(tw, tr); err != nil {
				return err
			}
		}
	}
}

var _ sandbox.ArtifactReader = (*Docker)(nil)
