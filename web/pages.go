package web

import (
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/kod-forge/kod/forge"
)

// repoItem is a repository in the API's shape, with what the pages add.
type repoItem struct {
	Name              string       `json:"name"`
	CreatedAt         forge.Millis `json:"createdAt"`
	ProtectedBranches []string     `json:"protectedBranches"`
	Collaborators     []string     `json:"collaborators"`
	Branches          []string     `json:"branches"`
	DefaultBranch     *string      `json:"defaultBranch"`

	LastRun  *forge.Run `json:"-"`
	CloneURL string     `json:"-"`
	SSHURL   string     `json:"-"`
}

// reposPage is the list of repositories the session's token can access
// (GET /repos), each with its default branch, last run and clone URLs.
func (s *Server) reposPage(w http.ResponseWriter, r *http.Request, sess *session) error {
	var repos []*repoItem
	if err := s.call(r, http.MethodGet, "/repos", nil, &repos); err != nil {
		return err
	}
	for _, repo := range repos {
		if err := s.fillRepo(r, repo); err != nil {
			return err
		}
	}
	s.render(w, r, http.StatusOK, "repos", &view{Title: "Repositories", Nav: "repos", CSRF: sess.csrf, Data: repos})
	return nil
}

// fillRepo adds the detail (default branch, branches), the last run (when
// the token may read runs) and the clone URLs to repo.
func (s *Server) fillRepo(r *http.Request, repo *repoItem) error {
	if err := s.call(r, http.MethodGet, repoPath(repo.Name), nil, repo); err != nil {
		return err
	}
	var runs []*forge.Run
	switch err := s.call(r, http.MethodGet, repoPath(repo.Name)+"/workflows", nil, &runs); {
	case isStatus(err, http.StatusForbidden):
	case err != nil:
		return err
	case len(runs) > 0:
		repo.LastRun = runs[0]
	}
	repo.CloneURL = s.baseURL(r) + "/repos/" + repo.Name + ".git"
	if s.SSHAddr != "" {
		host, port, err := net.SplitHostPort(s.SSHAddr)
		if err == nil {
			if h := hostOf(s.PublicURL, r); h != "" && (host == "" || host == "0.0.0.0" || host == "::") {
				host = h
			}
			repo.SSHURL = "ssh://kod@" + net.JoinHostPort(host, port) + "/" + repo.Name + ".git"
		}
	}
	return nil
}

// baseURL is the server's external URL: KOD_PUBLIC_URL, else what the
// browser used.
func (s *Server) baseURL(r *http.Request) string {
	if s.PublicURL != "" {
		return strings.TrimRight(s.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func hostOf(public string, r *http.Request) string {
	if u, err := url.Parse(public); err == nil && u.Hostname() != "" {
		return u.Hostname()
	}
	if h, _, err := net.SplitHostPort(r.Host); err == nil {
		return h
	}
	return r.Host
}

// repoDetail is the repository page's data. A section the token may not
// read (403 from its API route) is nil and not shown.
type repoDetail struct {
	Repo       *repoItem
	Branches   []branchRow
	Runs       []*forge.Run
	Webhooks   []*webhookRow
	Secrets    []secretRow
	ShowHooks  bool
	ShowSecret bool
	CanTrigger bool
	CanRetry   bool
}

type branchRow struct {
	Name      string
	Protected bool
	Default   bool
	LastRun   *forge.Run
}

type webhookRow struct {
	ID         string            `json:"id"`
	URL        string            `json:"url"`
	Events     []string          `json:"events"`
	Deliveries []*forge.Delivery `json:"-"`
}

type secretRow struct {
	Name      string       `json:"name"`
	UpdatedAt forge.Millis `json:"updatedAt"`
}

// repoPage is one repository: branches with their last run, recent runs,
// protected branches, collaborators, webhooks with their deliveries, and
// secret names, each shown when the token may read it.
func (s *Server) repoPage(w http.ResponseWriter, r *http.Request, sess *session) error {
	repo := &repoItem{Name: r.PathValue("name")}
	if err := s.fillRepo(r, repo); err != nil {
		return err
	}
	d := &repoDetail{Repo: repo}
	var runs []*forge.Run
	if err := s.call(r, http.MethodGet, repoPath(repo.Name)+"/workflows", nil, &runs); err != nil && !isStatus(err, http.StatusForbidden) {
		return err
	}
	last := map[string]*forge.Run{}
	for _, run := range runs {
		if last[run.Branch] == nil {
			last[run.Branch] = run
		}
	}
	for _, b := range repo.Branches {
		d.Branches = append(d.Branches, branchRow{Name: b, Protected: slices.Contains(repo.ProtectedBranches, b),
			Default: repo.DefaultBranch != nil && *repo.DefaultBranch == b, LastRun: last[b]})
	}
	d.Runs = runs[:min(len(runs), 10)]
	var hooks []*webhookRow
	switch err := s.call(r, http.MethodGet, repoPath(repo.Name)+"/webhooks", nil, &hooks); {
	case isStatus(err, http.StatusForbidden):
	case err != nil:
		return err
	default:
		d.ShowHooks, d.Webhooks = true, hooks
		for _, h := range hooks {
			if err := s.call(r, http.MethodGet, repoPath(repo.Name)+"/webhooks/"+url.PathEscape(h.ID)+"/deliveries", nil, &h.Deliveries); err != nil {
				return err
			}
			h.Deliveries = h.Deliveries[:min(len(h.Deliveries), 10)]
		}
	}
	switch err := s.call(r, http.MethodGet, repoPath(repo.Name)+"/secrets", nil, &d.Secrets); {
	case isStatus(err, http.StatusForbidden):
	case err != nil:
		return err
	default:
		d.ShowSecret = true
	}
	p := forge.PrincipalFromContext(r.Context())
	d.CanTrigger = p.Has(forge.PermWorkflowTrigger)
	d.CanRetry = p.Has(forge.PermWebhookWrite)
	s.render(w, r, http.StatusOK, "repo", &view{Title: repo.Name, Nav: "repos", CSRF: sess.csrf, Data: d, Notice: notice(r)})
	return nil
}

// runsFilter is the runs page's query: every field optional.
type runsFilter struct {
	Repo, Branch, Status, Trigger string
	Page                          int
}

// runsPageData is one page of the filtered runs.
type runsPageData struct {
	Filter     runsFilter
	Runs       []*forge.Run
	Repos      []string
	Statuses   []string
	Triggers   []string
	Page       int
	PrevQuery  string
	NextQuery  string
	Total      int
	FirstIndex int
}

// runsPerPage is the runs page's page size.
const runsPerPage = 25

// runsPage lists the runs of every repository the token may read runs
// of, newest first, filtered by repository, branch, status and trigger,
// 25 a page. A plain GET form: works without JavaScript.
func (s *Server) runsPage(w http.ResponseWriter, r *http.Request, sess *session) error {
	q := r.URL.Query()
	f := runsFilter{Repo: q.Get("repo"), Branch: q.Get("branch"), Status: q.Get("status"), Trigger: q.Get("trigger")}
	f.Page, _ = strconv.Atoi(q.Get("page"))
	f.Page = max(f.Page, 1)
	var repos []*repoItem
	if err := s.call(r, http.MethodGet, "/repos", nil, &repos); err != nil {
		return err
	}
	d := &runsPageData{Filter: f, Statuses: []string{"queued", "running", "completed", "failed", "cancelled"}, Triggers: []string{"push", "manual", "schedule"}}
	var all []*forge.Run
	for _, repo := range repos {
		d.Repos = append(d.Repos, repo.Name)
		if f.Repo != "" && repo.Name != f.Repo {
			continue
		}
		var runs []*forge.Run
		switch err := s.call(r, http.MethodGet, repoPath(repo.Name)+"/workflows", nil, &runs); {
		case isStatus(err, http.StatusForbidden):
			continue
		case err != nil:
			return err
		}
		for _, run := range runs {
			if (f.Branch == "" || run.Branch == f.Branch) && (f.Status == "" || string(run.Status) == f.Status) && (f.Trigger == "" || string(run.Trigger) == f.Trigger) {
				all = append(all, run)
			}
		}
	}
	slices.SortStableFunc(all, func(a, b *forge.Run) int {
		switch {
		case a.CreatedAt > b.CreatedAt:
			return -1
		case a.CreatedAt < b.CreatedAt:
			return 1
		}
		return strings.Compare(b.ID, a.ID)
	})
	d.Total = len(all)
	from := min((f.Page-1)*runsPerPage, len(all))
	d.Runs = all[from:min(from+runsPerPage, len(all))]
	d.Page, d.FirstIndex = f.Page, from
	page := func(n int) string {
		v := url.Values{}
		for k, val := range map[string]string{"repo": f.Repo, "branch": f.Branch, "status": f.Status, "trigger": f.Trigger} {
			if val != "" {
				v.Set(k, val)
			}
		}
		v.Set("page", strconv.Itoa(n))
		return "?" + v.Encode()
	}
	if f.Page > 1 {
		d.PrevQuery = page(f.Page - 1)
	}
	if from+runsPerPage < len(all) {
		d.NextQuery = page(f.Page + 1)
	}
	s.render(w, r, http.StatusOK, "runs", &view{Title: "Runs", Nav: "runs", CSRF: sess.csrf, Data: d})
	return nil
}
