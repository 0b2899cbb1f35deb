package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/kod-forge/kod/forge"
)

// stepView is one step as the run page shows it. ID is the step's id in
// the run's plan (its index in records from before step ids), what Needs
// and the graph's nodes name; anchors (#step-INDEX-L3) use the index,
// stable for links shared while a run goes on; Param is what ?step= takes
// (the id, or the name in records from before ids).
type stepView struct {
	Index    int      `json:"index"`
	ID       string   `json:"id"`
	Param    string   `json:"param"`
	Name     string   `json:"name"`
	Workflow string   `json:"workflow,omitempty"`
	Status   string   `json:"status"` // planned (pending), running, success, failed, skipped, cancelled
	Duration int64    `json:"duration"`
	ExitCode *int     `json:"exitCode,omitempty"`
	Error    string   `json:"error,omitempty"`
	Needs    []string `json:"needs,omitempty"`
	Output   string   `json:"-"` // the record's tail of the output, for pages without JavaScript
}

// stepGroup is the steps of one workflow file (or matrix instance).
type stepGroup struct {
	Workflow string
	Steps    []stepView
}

// runView is the run page's data, and (as JSON) what its script polls.
type runView struct {
	Run       *forge.Run   `json:"run"`
	Steps     []stepView   `json:"steps"`
	Groups    []stepGroup  `json:"-"`
	Graph     [][]stepView `json:"-"` // layers of the needs graph; nil when no step needs another
	Favicon   string       `json:"favicon"`
	CanCancel bool         `json:"canCancel"`
	CanRerun  bool         `json:"canRerun"`
	Duration  int64        `json:"duration"` // ms so far
}

// loadRun reads run {id} of repository {name} through the API (which
// authorises workflow:read on the repository).
func (s *Server) loadRun(r *http.Request) (*forge.Run, error) {
	var run forge.Run
	err := s.call(r, http.MethodGet, repoPath(r.PathValue("name"))+"/workflows/"+url.PathEscape(r.PathValue("id")), nil, &run)
	return &run, err
}

func (s *Server) runView(r *http.Request, run *forge.Run) *runView {
	v := &runView{Run: run, Favicon: favicon(run.Status)}
	if run.Result != nil {
		for i, st := range run.Result.Steps {
			sv := stepView{Index: i, ID: st.ID, Name: st.Name, Workflow: st.Workflow, Duration: st.Duration, ExitCode: st.ExitCode,
				Error: st.Error, Output: st.Output, Needs: st.Needs, Status: viewStatus(st)}
			sv.Param = st.ID
			if sv.ID == "" {
				sv.ID, sv.Param = strconv.Itoa(i), st.Name
			}
			if sv.Status == "running" && st.StartedAt != 0 {
				sv.Duration = s.now().UnixMilli() - int64(st.StartedAt)
			}
			v.Steps = append(v.Steps, sv)
		}
	}
	if c := run.CurrentStep; c != nil && c.Index >= len(v.Steps) {
		v.Steps = append(v.Steps, stepView{Index: c.Index, ID: strconv.Itoa(c.Index), Param: c.Name, Name: c.Name, Workflow: c.Workflow, Status: "running",
			Duration: s.now().UnixMilli() - int64(c.StartedAt)})
	}
	for _, st := range v.Steps {
		if n := len(v.Groups); n == 0 || v.Groups[n-1].Workflow != st.Workflow {
			v.Groups = append(v.Groups, stepGroup{Workflow: st.Workflow})
		}
		g := &v.Groups[len(v.Groups)-1]
		g.Steps = append(g.Steps, st)
	}
	if !chained(v.Steps) {
		v.Graph = layers(v.Steps)
	}
	switch {
	case run.CompletedAt != 0 && run.StartedAt != 0:
		v.Duration = int64(run.CompletedAt - run.StartedAt)
	case run.StartedAt != 0:
		v.Duration = s.now().UnixMilli() - int64(run.StartedAt)
	}
	p := forge.PrincipalFromContext(r.Context())
	v.CanCancel = !run.Status.Done() && p.Has(forge.PermWorkflowTrigger)
	v.CanRerun = run.Status.Done() && p.Has(forge.PermWorkflowTrigger)
	return v
}

// viewStatus is the page's word for a step's state.
func viewStatus(st forge.StepResult) string {
	switch st.Status {
	case forge.StepPending:
		return "planned"
	case forge.StepCompleted:
		return "success"
	case forge.StepRunning, forge.StepFailed, forge.StepSkipped, forge.StepCancelled:
		return string(st.Status)
	}
	switch {
	case st.Skipped:
		return "skipped"
	case st.Success:
		return "success"
	}
	return "failed"
}

// chained reports whether every step needs exactly the step before it in
// its workflow (the first none): a sequential run, which the step list
// shows well enough without a graph.
func chained(steps []stepView) bool {
	for i, st := range steps {
		first := i == 0 || steps[i-1].Workflow != st.Workflow
		switch {
		case first && len(st.Needs) != 0:
			return false
		case !first && (len(st.Needs) != 1 || st.Needs[0] != steps[i-1].ID):
			return false
		}
	}
	return true
}

// stepStatus is the status word of a step view (templates).
func stepStatus(st stepView) string { return st.Status }

// runPage is the run: header, steps grouped by workflow, each expandable
// to its log (live through runEvents, windowed through stepLines).
func (s *Server) runPage(w http.ResponseWriter, r *http.Request, sess *session) error {
	run, err := s.loadRun(r)
	if err != nil {
		return err
	}
	v := s.runView(r, run)
	title := fmt.Sprintf("%s %s · %s #%s", statusIcon(string(run.Status)), run.Status, run.RepoName, shortCommit(run.ID))
	s.render(w, r, http.StatusOK, "run", &view{Title: title, Status: run.Status, Nav: "runs", CSRF: sess.csrf, Data: v, Notice: notice(r)})
	return nil
}

// runJSON is the run page's poll: the run record and its step views.
func (s *Server) runJSON(w http.ResponseWriter, r *http.Request, _ *session) error {
	run, err := s.loadRun(r)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	return json.NewEncoder(w).Encode(s.runView(r, run))
}

// runEvents is the live log: the API's Server-Sent Events stream of the
// run, starting at ?from=STEP:OFFSET (the end of the window the page
// already shows) unless the browser resumes with Last-Event-ID. The
// stream ends with the session (sign-out) and, through the API, when the
// token is deleted or expires.
func (s *Server) runEvents(w http.ResponseWriter, r *http.Request, sess *session) error {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-sess.ended:
			cancel()
		case <-ctx.Done():
		}
	}()
	h := http.Header{"Accept": {"text/event-stream"}}
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		h.Set("Last-Event-ID", id)
	} else if from := r.URL.Query().Get("from"); from != "" {
		h.Set("Last-Event-ID", from)
	}
	s.forward(w, r.WithContext(ctx), repoPath(r.PathValue("name"))+"/workflows/"+url.PathEscape(r.PathValue("id"))+"/logs", nil, h)
	return nil
}

// rawLog downloads the run's log (or one step's, ?step=NAME) as text,
// exactly as the API's GET .../logs gives it.
func (s *Server) rawLog(w http.ResponseWriter, r *http.Request, _ *session) error {
	q := url.Values{}
	name := fmt.Sprintf("%s-%s", r.PathValue("name"), r.PathValue("id"))
	if st := r.URL.Query().Get("step"); st != "" {
		q.Set("step", st)
		name += "-step"
	}
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name+".log"))
	s.forward(w, r, repoPath(r.PathValue("name"))+"/workflows/"+url.PathEscape(r.PathValue("id"))+"/logs", q, nil)
	return nil
}

// cancel is the run page's Cancel button: the API's POST .../cancel.
func (s *Server) cancel(w http.ResponseWriter, r *http.Request, _ *session) error {
	name, id := r.PathValue("name"), r.PathValue("id")
	if err := s.call(r, http.MethodPost, repoPath(name)+"/workflows/"+url.PathEscape(id)+"/cancel", nil, nil); err != nil {
		return err
	}
	http.Redirect(w, r, "/ui/repos/"+url.PathEscape(name)+"/runs/"+url.PathEscape(id)+"?done=cancel", http.StatusSeeOther)
	return nil
}

// rerun starts the run again: a new manual run of the same branch, commit
// and workflow files (POST /repos/:name/workflows).
func (s *Server) rerun(w http.ResponseWriter, r *http.Request, _ *session) error {
	run, err := s.loadRun(r)
	if err != nil {
		return err
	}
	return s.start(w, r, run.RepoName, map[string]any{"branch": run.Branch, "commit": run.Commit, "files": run.Files})
}

// trigger is the repository page's Run button: a manual run of the posted
// branch.
func (s *Server) trigger(w http.ResponseWriter, r *http.Request, _ *session) error {
	return s.start(w, r, r.PathValue("name"), map[string]any{"branch": r.PostFormValue("branch")})
}

func (s *Server) start(w http.ResponseWriter, r *http.Request, repo string, body map[string]any) error {
	var out struct {
		ID string `json:"id"`
	}
	if err := s.call(r, http.MethodPost, repoPath(repo)+"/workflows", body, &out); err != nil {
		return err
	}
	http.Redirect(w, r, "/ui/repos/"+url.PathEscape(repo)+"/runs/"+url.PathEscape(out.ID)+"?done=start", http.StatusSeeOther)
	return nil
}

// retryDelivery sends a webhook delivery again (owners/admins with
// webhook:write; the API decides).
func (s *Server) retryDelivery(w http.ResponseWriter, r *http.Request, _ *session) error {
	name := r.PathValue("name")
	path := repoPath(name) + "/webhooks/" + url.PathEscape(r.PathValue("hook")) + "/deliveries/" + url.PathEscape(r.PathValue("delivery")) + "/retry"
	if err := s.call(r, http.MethodPost, path, nil, nil); err != nil {
		return err
	}
	http.Redirect(w, r, "/ui/repos/"+url.PathEscape(name)+"?done=retry", http.StatusSeeOther)
	return nil
}

// notice is the message of ?done=: fixed texts only, so a link cannot put
// words on the page.
func notice(r *http.Request) string {
	switch r.URL.Query().Get("done") {
	case "cancel":
		return "Cancellation requested."
	case "start":
		return "Run queued."
	case "retry":
		return "Delivery queued to be sent again."
	}
	return ""
}
