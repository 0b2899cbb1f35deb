package api

import (
	"context"
	"errors"
	"fmt"
	"html"
	"net/http"
	"slices"
	"strings"

	"github.com/gorilla/mux"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/runner/workflow"
)

// badge is GET /repos/:name/badge.svg?branch=B[&workflow=FILE] (kod's
// addition): an SVG badge of the latest run on branch B (default: the
// default branch), or of the latest run covering FILE (".kod/workflows/
// ci.toml" or "ci.toml"): "passing", "failing" (failed or cancelled),
// "running" (queued or running) or "none" (no such run). Cache-Control:
// no-cache, so pages embedding it show the state of now.
//
// A token with workflow:read on the repository sees its badge; so does
// anyone when the owner set PATCH /repos/:name {"publicBadges": true}.
// Every other caller (no token, an unknown token, a token without access)
// gets the "none" badge with 200, the same bytes whether the repository
// is private or does not exist, so badges never reveal which names exist.
func (s *Server) badge(w http.ResponseWriter, r *http.Request) {
	state := forge.StateNone
	if repo, ok := s.badgeRepo(r); ok {
		st, err := s.branchState(r.Context(), repo, r.URL.Query().Get("branch"), r.URL.Query().Get("workflow"))
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		state = st
	}
	h := w.Header()
	h.Set("Content-Type", "image/svg+xml; charset=utf-8")
	h.Set("Cache-Control", "no-cache, max-age=0")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(badgeSVG(state))
	}
}

// badgeRepo returns the repository whose badge the caller may see.
func (s *Server) badgeRepo(r *http.Request) (*forge.Repo, bool) {
	repo, err := s.Store.GetRepo(r.Context(), mux.Vars(r)["name"])
	if err != nil {
		if !errors.Is(err, forge.ErrNotFound) {
			s.log.Error("reading a repository for its badge", "err", err)
		}
		return nil, false
	}
	if repo.PublicBadges {
		return repo, true
	}
	tok, err := s.tokenOf(r)
	if err != nil {
		return nil, false
	}
	if forge.Authorize(forge.PrincipalFromToken(tok), actWorkflowRead, repo) != nil {
		return nil, false
	}
	return repo, true
}

// branchState is the state of the latest run on branch ("" = the default
// branch), only counting runs that cover file when file is set.
func (s *Server) branchState(ctx context.Context, repo *forge.Repo, branch, file string) (forge.CommitState, error) {
	if branch == "" {
		b, err := s.Git.HeadBranch(ctx, s.repoDir(repo))
		if err != nil || b == "" {
			return forge.StateNone, nil // empty repository
		}
		branch = b
	}
	if file != "" && !strings.Contains(file, "/") {
		file = workflow.Dir + "/" + file
	}
	if file != "" {
		clean, err := cleanWorkflowFiles([]string{file})
		if err != nil {
			return forge.StateNone, nil // names no workflow: no run covers it
		}
		file = clean[0]
	}
	runs, err := s.Store.ListRuns(ctx, repo.Name, 0)
	if err != nil {
		return "", err
	}
	for _, run := range runs { // newest first
		if run.Branch != branch {
			continue
		}
		if file == "" {
			return forge.RunState(run), nil
		}
		all := run.Files
		if len(all) == 0 && (run.Result == nil || !run.Status.Done()) {
			if all, err = s.workflowFilesAt(ctx, repo, run.Commit); err != nil {
				return "", err
			}
		}
		if slices.Contains(forge.RunFiles(run, all), file) {
			return forge.FileState(run, file), nil
		}
	}
	return forge.StateNone, nil
}

// badgeLabels are the right-hand text and colour of each state.
var badgeLabels = map[forge.CommitState][2]string{
	forge.StateSuccess: {"passing", "#2e7d32"},
	forge.StateFailure: {"failing", "#c62828"},
	forge.StatePending: {"running", "#b26a00"},
	forge.StateNone:    {"none", "#757575"},
}

// badgeSVG draws a flat two-part badge "build | <state>"; widths follow the
// text at about 7 px a character (Verdana 11 px).
func badgeSVG(state forge.CommitState) []byte {
	l := badgeLabels[state]
	left, right, colour := "build", l[0], l[1]
	lw, rw := 10+7*len(left), 10+7*len(right)
	return fmt.Appendf(nil, `<svg xmlns="http://www.w3.org/2000/svg" width="%[1]d" height="20" role="img" aria-label="%[3]s: %[4]s">
<title>%[3]s: %[4]s</title>
<rect width="%[2]d" height="20" fill="#555"/>
<rect x="%[2]d" width="%[5]d" height="20" fill="%[6]s"/>
<g fill="#fff" text-anchor="middle" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11">
<text x="%[7]d" y="14">%[3]s</text>
<text x="%[8]d" y="14">%[4]s</text>
</g>
</svg>
`, lw+rw, lw, html.EscapeString(left), html.EscapeString(right), rw, colour, lw/2, lw+rw/2)
}
