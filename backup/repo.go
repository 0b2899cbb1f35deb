package backup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/kod-forge/kod/gitsvc"
)

// maxPasses bounds how often a repository's objects are walked again after
// files vanished during a walk (a concurrent `git gc` repacking them).
const maxPasses = 20

// repo copies the bare repository at dir under prefix so that the copy is
// consistent even while pushes run:
//
//  1. the refs and HEAD are read first (git for-each-ref);
//  2. the objects are copied after; git writes objects before it moves a
//     ref to them and never deletes reachable ones, so every object the
//     snapshot's refs need is there. Files that vanish while being walked
//     (git gc moved them into a new pack) make the walk run again to pick
//     up what replaced them. Packs whose index is not written yet, and the
//     quarantine of pushes in progress, are left out;
//  3. the refs are written as packed-refs from the snapshot, and the loose
//     ref files, lock files and reflogs are left out.
func (a *archiveWriter) repo(ctx context.Context, git *gitsvc.Git, dir, prefix string) error {
	refs, err := git.Output(ctx, &gitsvc.Cmd{Dir: dir, Args: []string{"for-each-ref", "--format=%(objectname) %(refname)"}})
	if err != nil {
		return err
	}
	head, err := os.ReadFile(filepath.Join(dir, "HEAD"))
	if err != nil {
		return err
	}
	done := map[string]bool{}
	for pass := 1; ; pass++ {
		walk := dir // later passes look for what replaced vanished objects
		if pass > 1 {
			walk = filepath.Join(dir, "objects")
		}
		vanished, err := a.repoPass(ctx, dir, walk, prefix, done)
		if err != nil {
			return err
		}
		if !vanished {
			break
		}
		if pass == maxPasses {
			return fmt.Errorf("files kept vanishing during %d walks (is git gc running in a loop?)", maxPasses)
		}
	}
	for _, d := range []string{"refs/heads", "refs/tags"} {
		if err := a.dir(prefix + d); err != nil {
			return err
		}
	}
	if err := a.bytesEntry(prefix+"HEAD", head, 0o644); err != nil {
		return err
	}
	return a.bytesEntry(prefix+"packed-refs", packedRefs(string(refs)), 0o644)
}

// packedRefs turns for-each-ref lines into a packed-refs file, sorted.
func packedRefs(refs string) []byte {
	lines := strings.Split(strings.TrimSpace(refs), "\n")
	slices.SortFunc(lines, func(x, y string) int {
		_, rx, _ := strings.Cut(x, " ")
		_, ry, _ := strings.Cut(y, " ")
		return strings.Compare(rx, ry)
	})
	var b strings.Builder
	for _, l := range lines {
		if l != "" {
			b.WriteString(l + "\n")
		}
	}
	return []byte(b.String())
}

// repoPass walks walk (dir or a directory in it) once, copying the files
// not in done. It reports whether any file vanished between being listed
// and being opened.
func (a *archiveWriter) repoPass(ctx context.Context, dir, walk, prefix string, done map[string]bool) (bool, error) {
	vanished := false
	err := filepath.WalkDir(walk, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, os.ErrNotExist) {
			vanished = true
			return nil
		}
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel != "." && skipRepoDir(rel) {
				return filepath.SkipDir
			}
			if rel != "." && !done[rel+"/"] { // empty ones too: objects/pack, branches
				done[rel+"/"] = true
				return a.dir(prefix + rel)
			}
			return nil
		}
		if done[rel] || !d.Type().IsRegular() || skipRepoFile(rel) {
			return nil
		}
		if strings.HasPrefix(rel, "objects/pack/") {
			return a.packFile(p, rel, prefix, done, &vanished)
		}
		done[rel] = true
		err = a.file(p, prefix+rel)
		if errors.Is(err, os.ErrNotExist) {
			delete(done, rel)
			vanished = true
			return nil
		}
		return err
	})
	return vanished, err
}

// packFile copies a pack with its index and companions, the pack first, and
// only once its index exists (an index without its pack would break reads;
// a pack without an index is ignored by git and not needed by the refs).
func (a *archiveWriter) packFile(p, rel, prefix string, done map[string]bool, vanished *bool) error {
	base, ok := strings.CutSuffix(p, path.Ext(p))
	if !ok || !strings.HasPrefix(path.Base(rel), "pack-") {
		return nil
	}
	relBase := strings.TrimSuffix(rel, path.Ext(rel))
	if done[relBase+".pack"] {
		return nil
	}
	if _, err := os.Stat(base + ".idx"); err != nil {
		return nil // still being written, or removed
	}
	for _, ext := range []string{".pack", ".idx", ".rev", ".bitmap"} {
		err := a.file(base+ext, prefix+relBase+ext)
		switch {
		case err == nil:
			done[relBase+ext] = true
		case errors.Is(err, os.ErrNotExist) && ext == ".pack":
			*vanished = true
			return nil
		case errors.Is(err, os.ErrNotExist) && ext == ".idx":
			*vanished = true // the pack without its index is ignored by git
			return nil
		case errors.Is(err, os.ErrNotExist):
		default:
			return err
		}
	}
	return nil
}

// skipRepoDir: refs (replaced by packed-refs), reflogs, and the quarantine
// and temporary object directories of pushes and repacks in progress.
func skipRepoDir(rel string) bool {
	switch {
	case rel == "refs", rel == "logs", rel == "objects/info/commit-graphs":
		return true
	case strings.HasPrefix(rel, "objects/incoming-"), strings.HasPrefix(rel, "objects/tmp_objdir"):
		return true
	}
	return false
}

// skipRepoFile: files rewritten from the ref snapshot, lock and temporary
// files, and caches git rebuilds (they may describe packs not copied).
func skipRepoFile(rel string) bool {
	base := path.Base(rel)
	switch {
	case rel == "HEAD", rel == "packed-refs", rel == "FETCH_HEAD", rel == "ORIG_HEAD":
		return true
	case strings.HasSuffix(base, ".lock"), strings.HasPrefix(base, "tmp_"), strings.HasPrefix(base, ".tmp-"):
		return true
	case rel == "objects/info/commit-graph", rel == "objects/info/packs", rel == "objects/pack/multi-pack-index":
		return true
	case strings.HasPrefix(rel, "objects/pack/") && (strings.HasSuffix(base, ".keep") || strings.HasSuffix(base, ".promisor") || strings.HasSuffix(base, ".mtimes")):
		return true
	}
	return false
}
