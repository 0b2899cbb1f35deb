package gitsvc

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// CheckoutOptions says what Checkout writes.
type CheckoutOptions struct {
	// Commit is the commit checked out (full or abbreviated id, or any
	// revision naming a commit); required.
	Commit string
	// Branch is the local branch HEAD names, e.g. "main" (the pushed
	// branch, without refs/heads/); "" leaves HEAD detached at Commit.
	Branch string
	// Depth is the number of commits of history kept, counted from Commit
	// along every parent as `git clone --depth` does; 0 means all history.
	Depth int
	// RemoteURL is the url of remote "origin" (the repository's clone URL,
	// without credentials); "" writes no remote.
	RemoteURL string
}

// checkoutTimeout bounds the git commands of one checkout.
const checkoutTimeout = 30 * time.Minute

// Checkout writes to w a tar stream of a git working tree of opt.Commit in
// the bare repository repoDir, as `git clone` would leave it but built on
// the host, so a container without git can receive it:
//
//   - every file of the commit's tree with its blob's exact bytes (no
//     export-ignore, export-subst, end-of-line conversion or filters),
//     symlinks as symlinks, executables 0755, submodules as empty
//     directories, every mtime the committer date;
//   - .git with HEAD on refs/heads/<Branch> (or detached), the commit's
//     history (Depth commits and a shallow file when Depth > 0) in one pack
//     with its index, the tags that point into that history (packed-refs,
//     annotated ones peeled), refs/remotes/origin/<Branch>, an index
//     matching the tree (so `git status` is clean) and a config with
//     remote "origin" at RemoteURL and the branch tracking it.
//
// Nothing is held in memory beyond one tar header: file contents stream
// from `git cat-file --batch`; the pack is written by `git pack-objects`
// into a temporary directory (removed on return) while the tree streams,
// then copied. Errors: an invalid option or unknown commit (before
// anything is written), a failed git command (*Error) or a failed write.
func (g *Git) Checkout(ctx context.Context, repoDir string, opt CheckoutOptions, w io.Writer) error {
	if opt.Depth < 0 {
		return fmt.Errorf("checkout depth %d: must be 0 (all history) or more", opt.Depth)
	}
	if opt.Branch != "" {
		if err := g.Run(ctx, &Cmd{Dir: repoDir, Args: []string{"check-ref-format", "refs/heads/" + opt.Branch}}); err != nil {
			return fmt.Errorf("checkout: invalid branch name %q", opt.Branch)
		}
	}
	if strings.ContainsAny(opt.RemoteURL, "\n\r\x00") {
		return fmt.Errorf("checkout: invalid remote URL %q", opt.RemoteURL)
	}
	commit, ok, err := g.ResolveCommit(ctx, repoDir, opt.Commit)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("checkout: commit %q not found", opt.Commit)
	}
	format := "sha1"
	if len(commit) == 64 {
		format = "sha256"
	}
	tmp, err := os.MkdirTemp("", checkoutTempPrefix)
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	unlock, err := holdTemp(tmp)
	if err != nil {
		return err
	}
	defer unlock()

	ctx, cancel := context.WithTimeout(ctx, checkoutTimeout)
	defer cancel()
	info, err := g.historyOf(ctx, repoDir, commit, opt.Depth)
	if err != nil {
		return err
	}
	tags, err := g.tagsInto(ctx, repoDir, commit, info)
	if err != nil {
		return err
	}

	// The pack and the index are made while the tree streams.
	type made struct {
		pack string
		err  error
	}
	packed := make(chan made, 1)
	go func() {
		p, err := g.writePack(ctx, repoDir, tmp, commit, tags, info.shallow)
		packed <- made{p, err}
	}()
	indexed := make(chan error, 1)
	go func() {
		indexed <- g.Run(ctx, &Cmd{Dir: repoDir, Args: []string{"read-tree", "--end-of-options", commit}, Env: []string{"GIT_INDEX_FILE=" + filepath.Join(tmp, "index")}, Timeout: -1})
	}()
	// Headers and small files are many small writes; the reader (an
	// engine's upload) does better with large ones.
	bw := bufio.NewWriterSize(w, 256<<10)
	tw := tar.NewWriter(bw)
	treeErr := g.writeTree(ctx, repoDir, commit, info.time, tw)
	if treeErr != nil {
		cancel() // ends pack-objects and read-tree
	}
	p, idxErr := <-packed, <-indexed
	if err := errors.Join(treeErr, p.err, idxErr); err != nil {
		return err
	}
	gd := &gitDir{tw: tw, mtime: info.time}
	gd.dir(".git/")
	for _, d := range []string{"branches", "hooks", "info", "objects", "objects/info", "objects/pack", "refs", "refs/heads", "refs/tags", "refs/remotes"} {
		gd.dir(".git/" + d + "/")
	}
	head := commit + "\n"
	if opt.Branch != "" {
		head = "ref: refs/heads/" + opt.Branch + "\n"
	}
	gd.file(".git/HEAD", 0o644, head)
	gd.file(".git/config", 0o644, repoConfig(format, opt))
	gd.file(".git/description", 0o644, "Unnamed repository; edit this file 'description' to name the repository.\n")
	gd.file(".git/info/exclude", 0o644, "")
	gd.file(".git/packed-refs", 0o644, packedRefs(commit, opt, tags))
	if len(info.shallow) > 0 {
		gd.file(".git/shallow", 0o644, strings.Join(info.shallow, "\n")+"\n")
	}
	base := filepath.Base(p.pack)
	gd.copy(".git/objects/pack/"+base+".pack", 0o444, p.pack+".pack")
	gd.copy(".git/objects/pack/"+base+".idx", 0o444, p.pack+".idx")
	gd.copy(".git/index", 0o644, filepath.Join(tmp, "index"))
	if gd.err != nil {
		return gd.err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

// history is what the checkout keeps of a commit's history.
type history struct {
	time    time.Time       // committer date of the commit
	within  map[string]bool // with a depth: the commits kept; nil means all
	shallow []string        // with a depth: kept commits whose parents are not, sorted
}

// historyOf reads the commit's date and, with depth > 0, walks its parents
// breadth-first (`git cat-file --batch`) to find the commits within depth
// and the shallow boundary, as `git clone --depth` keeps them.
func (g *Git) historyOf(ctx context.Context, repoDir, commit string, depth int) (*history, error) {
	b, err := g.newBatch(ctx, repoDir)
	if err != nil {
		return nil, err
	}
	defer b.close()
	h := &history{}
	parents, when, err := b.commit(commit)
	if err != nil {
		return nil, err
	}
	h.time = when
	if depth == 0 {
		return h, nil
	}
	h.within = map[string]bool{commit: true}
	level := []string{commit}
	next := map[string][]string{commit: parents}
	for d := 1; len(level) > 0; d++ {
		var following []string
		for _, c := range level {
			ps := next[c]
			if d == depth {
				if len(ps) > 0 {
					h.shallow = append(h.shallow, c)
				}
				continue
			}
			for _, p := range ps {
				if h.within[p] {
					continue
				}
				h.within[p] = true
				pp, _, err := b.commit(p)
				if err != nil {
					return nil, err
				}
				next[p] = pp
				following = append(following, p)
			}
		}
		level = following
	}
	slices.Sort(h.shallow)
	return h, nil
}

// tag is one tag ref kept by a checkout.
type tag struct {
	ref    string // refs/tags/...
	oid    string // what the ref points at
	peeled string // the commit an annotated tag points at; "" for a lightweight tag
}

// tagsInto lists the tags whose commit is in the checkout's history:
// reachable from commit and, with a depth, within it.
func (g *Git) tagsInto(ctx context.Context, repoDir, commit string, h *history) ([]tag, error) {
	out, err := g.Output(ctx, &Cmd{Dir: repoDir, Args: []string{"for-each-ref", "--merged=" + commit,
		"--format=%(objectname) %(objecttype) %(*objectname) %(*objecttype) %(refname)", "refs/tags/"}})
	if err != nil {
		return nil, err
	}
	var tags []tag
	for line := range strings.Lines(string(out)) {
		f := strings.SplitN(strings.TrimRight(line, "\n"), " ", 5)
		if len(f) != 5 {
			continue
		}
		t := tag{ref: f[4], oid: f[0]}
		target := f[0]
		if f[1] == "tag" {
			t.peeled, target = f[2], f[2]
			if f[3] == "tag" { // a tag of a tag: peel all the way
				target, _, err = g.ResolveCommit(ctx, repoDir, f[0])
				if err != nil {
					return nil, err
				}
				t.peeled = target
			}
		}
		if h.within != nil && !h.within[target] {
			continue
		}
		tags = append(tags, t)
	}
	return tags, nil
}

// writePack runs `git pack-objects` into dir for commit's history and the
// tags, cut at the shallow commits, and returns the pack's path without
// its .pack/.idx extension. pack-objects writes a temporary file in its
// object directory and renames it to the path asked for, which fails
// across file systems (a temporary directory on tmpfs, repositories on a
// volume); so it runs with dir/objects as its object directory and the
// repository's objects as an alternate it reads (and reuses packed data)
// from.
func (g *Git) writePack(ctx context.Context, repoDir, dir, commit string, tags []tag, shallow []string) (string, error) {
	objects, err := filepath.Abs(filepath.Join(repoDir, "objects"))
	if err != nil {
		return "", err
	}
	scratch := filepath.Join(dir, "objects")
	if err := os.MkdirAll(filepath.Join(scratch, "pack"), 0o700); err != nil {
		return "", err
	}
	var in strings.Builder
	in.WriteString(commit + "\n")
	for _, t := range tags {
		if t.peeled != "" {
			in.WriteString(t.oid + "\n")
		}
	}
	for _, s := range shallow {
		in.WriteString("--shallow " + s + "\n")
	}
	out, err := g.Output(ctx, &Cmd{Dir: repoDir, Args: []string{"-c", "pack.compression=1", "pack-objects", "--revs", "--delta-base-offset", "--window=0", "-q", filepath.Join(dir, "pack")},
		Stdin: strings.NewReader(in.String()), Timeout: -1,
		Env: []string{"GIT_OBJECT_DIRECTORY=" + scratch, "GIT_ALTERNATE_OBJECT_DIRECTORIES=" + objects}})
	if err != nil {
		return "", err
	}
	hash := strings.TrimSpace(string(out))
	if !oidRE.MatchString(hash) {
		return "", fmt.Errorf("git pack-objects printed %q", hash)
	}
	return filepath.Join(dir, "pack-"+hash), nil
}

// writeTree writes every entry of commit's tree to tw: `git ls-tree` lists
// them, `git cat-file --batch` streams the blobs in the same order.
func (g *Git) writeTree(ctx context.Context, repoDir, commit string, mtime time.Time, tw *tar.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ls, lsCancel := g.Command(ctx, &Cmd{Dir: repoDir, Args: []string{"ls-tree", "-r", "-t", "-z", "--full-tree", "--end-of-options", commit}, Timeout: -1})
	defer lsCancel()
	var lsErr tailBuffer
	ls.Stderr = &lsErr
	listing, err := ls.StdoutPipe()
	if err != nil {
		return err
	}
	if err := ls.Start(); err != nil {
		return err
	}
	b, err := g.newBatch(ctx, repoDir)
	if err != nil {
		cancel()
		ls.Wait()
		return err
	}
	err = writeEntries(bufio.NewReaderSize(listing, 64<<10), b, mtime, tw)
	if err != nil {
		cancel()
	}
	err = errors.Join(err, b.close())
	if werr := ls.Wait(); werr != nil && err == nil {
		err = &Error{Args: ls.Args[1:], Stderr: lsErr.String(), Err: werr}
	}
	return err
}

// writeEntries reads `ls-tree -r -t -z` records and writes their tar
// entries.
func writeEntries(listing *bufio.Reader, b *batch, mtime time.Time, tw *tar.Writer) error {
	for {
		rec, err := listing.ReadString(0)
		if err == io.EOF && rec == "" {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading git ls-tree: %w", err)
		}
		meta, name, ok := strings.Cut(strings.TrimSuffix(rec, "\x00"), "\t")
		f := strings.Fields(meta)
		if !ok || len(f) != 3 || name == "" {
			return fmt.Errorf("git ls-tree printed %q", rec)
		}
		mode, oid := f[0], f[2]
		hdr := &tar.Header{Name: name, ModTime: mtime}
		switch mode {
		case "040000", "160000": // a tree, or a submodule: an empty directory
			hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, name+"/", 0o755
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
		case "120000":
			target, err := b.readAll(oid)
			if err != nil {
				return err
			}
			hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, string(target), 0o777
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
		case "100644", "100755":
			hdr.Typeflag, hdr.Mode = tar.TypeReg, 0o644
			if mode == "100755" {
				hdr.Mode = 0o755
			}
			if err := b.copyBlob(oid, hdr, tw); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: unknown git file mode %s", name, mode)
		}
	}
}

// batch is a running `git cat-file --batch`.
type batch struct {
	in     *bufio.Writer
	inPipe io.WriteCloser
	out    *bufio.Reader
	wait   func() error
}

func (g *Git) newBatch(ctx context.Context, repoDir string) (*batch, error) {
	c := &Cmd{Dir: repoDir, Args: []string{"cat-file", "--batch"}, Timeout: -1}
	cmd, cancel := g.Command(ctx, c)
	var stderr tailBuffer
	cmd.Stderr = &stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		cancel()
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, err
	}
	return &batch{in: bufio.NewWriter(in), inPipe: in, out: bufio.NewReaderSize(out, 64<<10), wait: func() error {
		defer cancel()
		if err := cmd.Wait(); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return &Error{Args: c.Args, Stderr: stderr.String(), Err: err}
		}
		return nil
	}}, nil
}

// close ends cat-file and waits for it.
func (b *batch) close() error {
	b.inPipe.Close()
	io.Copy(io.Discard, b.out)
	return b.wait()
}

// header asks for oid and reads the answer's header: its type and size.
func (b *batch) header(oid string) (string, int64, error) {
	if _, err := b.in.WriteString(oid + "\n"); err != nil {
		return "", 0, err
	}
	if err := b.in.Flush(); err != nil {
		return "", 0, fmt.Errorf("writing to git cat-file: %w", err)
	}
	line, err := b.out.ReadString('\n')
	if err != nil {
		return "", 0, fmt.Errorf("reading git cat-file: %w", err)
	}
	f := strings.Fields(line)
	if len(f) != 3 {
		return "", 0, fmt.Errorf("git cat-file: object %s: %s", oid, strings.TrimSpace(line))
	}
	size, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil {
		return "", 0, fmt.Errorf("git cat-file printed %q", line)
	}
	return f[1], size, nil
}

// trailer reads the newline after an object's content.
func (b *batch) trailer() error {
	if c, err := b.out.ReadByte(); err != nil || c != '\n' {
		return fmt.Errorf("git cat-file: malformed output")
	}
	return nil
}

// copyBlob writes hdr, sized from the blob, and the blob's bytes to tw.
func (b *batch) copyBlob(oid string, hdr *tar.Header, tw *tar.Writer) error {
	_, size, err := b.header(oid)
	if err != nil {
		return err
	}
	hdr.Size = size
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if _, err := io.CopyN(tw, b.out, size); err != nil {
		return err
	}
	return b.trailer()
}

// maxSmallObject bounds objects read whole (symlink targets, commits).
const maxSmallObject = 1 << 20

// readAll returns a small object's content.
func (b *batch) readAll(oid string) ([]byte, error) {
	_, size, err := b.header(oid)
	if err != nil {
		return nil, err
	}
	if size > maxSmallObject {
		return nil, fmt.Errorf("git object %s is %d bytes; at most %d expected", oid, size, maxSmallObject)
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(b.out, data); err != nil {
		return nil, err
	}
	return data, b.trailer()
}

// commit returns the parents and the committer date of a commit.
func (b *batch) commit(oid string) ([]string, time.Time, error) {
	data, err := b.readAll(oid)
	if err != nil {
		return nil, time.Time{}, err
	}
	hdr, _, _ := bytes.Cut(data, []byte("\n\n"))
	var parents []string
	var when time.Time
	for line := range strings.Lines(string(hdr)) {
		line = strings.TrimSuffix(line, "\n")
		if p, ok := strings.CutPrefix(line, "parent "); ok {
			parents = append(parents, p)
		}
		if c, ok := strings.CutPrefix(line, "committer "); ok {
			f := strings.Fields(c)
			if len(f) >= 2 {
				if secs, err := strconv.ParseInt(f[len(f)-2], 10, 64); err == nil {
					when = time.Unix(secs, 0)
				}
			}
		}
	}
	return parents, when, nil
}

// repoConfig is the .git/config of a checkout.
func repoConfig(format string, opt CheckoutOptions) string {
	var c strings.Builder
	version := "0"
	if format != "sha1" {
		version = "1"
	}
	c.WriteString("[core]\n\trepositoryformatversion = " + version + "\n\tfilemode = true\n\tbare = false\n\tlogallrefupdates = true\n")
	if format != "sha1" {
		c.WriteString("[extensions]\n\tobjectformat = " + format + "\n")
	}
	if opt.RemoteURL != "" {
		c.WriteString("[remote \"origin\"]\n\turl = " + configQuote(opt.RemoteURL) + "\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n")
		if opt.Branch != "" {
			c.WriteString("[branch " + configQuote(opt.Branch) + "]\n\tremote = origin\n\tmerge = " + configQuote("refs/heads/"+opt.Branch) + "\n")
		}
	}
	return c.String()
}

// configQuote quotes s as a git config value or subsection name.
func configQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// packedRefs is the .git/packed-refs of a checkout, sorted by ref name.
func packedRefs(commit string, opt CheckoutOptions, tags []tag) string {
	type ref struct{ name, oid, peeled string }
	var refs []ref
	if opt.Branch != "" {
		refs = append(refs, ref{"refs/heads/" + opt.Branch, commit, ""})
		if opt.RemoteURL != "" {
			refs = append(refs, ref{"refs/remotes/origin/" + opt.Branch, commit, ""})
		}
	}
	for _, t := range tags {
		refs = append(refs, ref{t.ref, t.oid, t.peeled})
	}
	slices.SortFunc(refs, func(a, b ref) int { return strings.Compare(a.name, b.name) })
	var s strings.Builder
	s.WriteString("# pack-refs with: peeled fully-peeled sorted \n")
	for _, r := range refs {
		s.WriteString(r.oid + " " + r.name + "\n")
		if r.peeled != "" {
			s.WriteString("^" + r.peeled + "\n")
		}
	}
	return s.String()
}

// gitDir writes the entries of .git, keeping the first error.
type gitDir struct {
	tw    *tar.Writer
	mtime time.Time
	err   error
}

func (d *gitDir) dir(name string) {
	if d.err == nil {
		d.err = d.tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: d.mtime})
	}
}

func (d *gitDir) file(name string, mode int64, content string) {
	if d.err != nil {
		return
	}
	d.err = d.tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(content)), ModTime: d.mtime})
	if d.err == nil {
		_, d.err = io.WriteString(d.tw, content)
	}
}

// copy streams the file at path into the entry name.
func (d *gitDir) copy(name string, mode int64, path string) {
	if d.err != nil {
		return
	}
	f, err := os.Open(path)
	if err != nil {
		d.err = err
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		d.err = err
		return
	}
	d.err = d.tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode, Size: st.Size(), ModTime: d.mtime})
	if d.err == nil {
		_, d.err = io.Copy(d.tw, f)
	}
}
