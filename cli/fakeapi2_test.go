package cli

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/kod-forge/kod/client"
	"github.com/kod-forge/kod/forge"
)

func (f *fakeAPI) scopedRoutes(h handleFn) {
	h("GET", "/repos/{name}/collaborators", func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
		if repo := f.repo(w, r); repo != nil {
			writeJSONT(w, 200, map[string]any{"repoName": repo.Name, "collaborators": append([]string{}, f.collab[repo.Name]...)})
		}
	})
	h("POST", "/repos/{name}/collaborators", func(w http.ResponseWriter, r *http.Request, b map[string]any) {
		if repo := f.repo(w, r); repo != nil {
			u, _ := b["username"].(string)
			if slices.Contains(f.collab[repo.Name], u) {
				fail(w, 409, "Collaborator already added to this repository")
				return
			}
			f.collab[repo.Name] = append(f.collab[repo.Name], u)
			writeJSONT(w, 201, map[string]any{"username": u, "addedAt": ms(0)})
		}
	})
	h("DELETE", "/repos/{name}/collaborators/{user}", func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
		if repo := f.repo(w, r); repo != nil {
			i := slices.Index(f.collab[repo.Name], vars(r, "user"))
			if i < 0 {
				fail(w, 404, "Collaborator not found")
				return
			}
			f.collab[repo.Name] = slices.Delete(f.collab[repo.Name], i, i+1)
			w.WriteHeader(204)
		}
	})
	h("GET", "/repos/{name}/protections", func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
		if repo := f.repo(w, r); repo != nil {
			writeJSONT(w, 200, map[string]any{"branches": repo.ProtectedBranches})
		}
	})
	h("PUT", "/repos/{name}/protections/branches/{branch}", func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
		if repo := f.repo(w, r); repo != nil {
			if b := vars(r, "branch"); !slices.Contains(repo.ProtectedBranches, b) {
				repo.ProtectedBranches = append(repo.ProtectedBranches, b)
			}
			writeJSONT(w, 200, map[string]any{"branches": repo.ProtectedBranches})
		}
	})
	h("DELETE", "/repos/{name}/protections/branches/{branch}", func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
		if repo := f.repo(w, r); repo != nil {
			repo.ProtectedBranches = slices.DeleteFunc(repo.ProtectedBranches, func(b string) bool { return b == vars(r, "branch") })
			writeJSONT(w, 200, map[string]any{"branches": repo.ProtectedBranches})
		}
	})
	h("GET", "/keys", func(w http.ResponseWriter, r *http.Request, _ map[string]any) { writeJSONT(w, 200, f.keys) })
	h("POST", "/keys", func(w http.ResponseWriter, r *http.Request, b map[string]any) {
		pub, _ := b["publicKey"].(string)
		if !strings.HasPrefix(pub, "ssh-") {
			fail(w, 400, "Invalid SSH public key")
			return
		}
		if strings.HasSuffix(pub, " admin-without-username") { // the real API's answer to a token without a username
			fail(w, 400, `This token has no username: SSH keys belong to a username. Use a token created with a username, or an admin token with "username"`)
			return
		}
		name, _ := b["name"].(string)
		writeJSONT(w, 201, client.Key{ID: "key000000002", Username: "alice", Name: name, PublicKey: pub, KeyType: strings.Fields(pub)[0], Fingerprint: "SHA256:newKeyFingerprint", CreatedAt: ms(0)})
	})
	h("DELETE", "/keys/{id}", func(w http.ResponseWriter, r *http.Request, _ map[string]any) { w.WriteHeader(204) })
	h("GET", "/repos/{name}/secrets", func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
		if repo := f.repo(w, r); repo != nil {
			writeJSONT(w, 200, append([]client.Secret{}, f.secret[repo.Name]...))
		}
	})
	h("PUT", "/repos/{name}/secrets/{secret}", func(w http.ResponseWriter, r *http.Request, b map[string]any) {
		if repo := f.repo(w, r); repo != nil {
			if v, _ := b["value"].(string); v == "" {
				fail(w, 400, "Secret value is required")
				return
			}
			writeJSONT(w, 200, map[string]any{"name": vars(r, "secret"), "repoName": repo.Name, "message": "Secret saved"})
		}
	})
	h("DELETE", "/repos/{name}/secrets/{secret}", func(w http.ResponseWriter, r *http.Request, _ map[string]any) { w.WriteHeader(204) })
	f.webhookRoutes(h)
}

func (f *fakeAPI) webhookRoutes(h handleFn) {
	h("GET", "/repos/{name}/webhooks", func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
		if f.repo(w, r) != nil {
			writeJSONT(w, 200, f.hooks)
		}
	})
	h("POST", "/repos/{name}/webhooks", func(w http.ResponseWriter, r *http.Request, b map[string]any) {
		if repo := f.repo(w, r); repo != nil {
			u, _ := b["url"].(string)
			if !strings.HasPrefix(u, "http") {
				fail(w, 400, "Webhook URL must use http or https")
				return
			}
			events := []string{"push"}
			if es, ok := b["events"].([]any); ok {
				events = nil
				for _, e := range es {
					events = append(events, fmt.Sprint(e))
				}
			}
			writeJSONT(w, 201, client.Webhook{ID: "hook00000002", RepoName: repo.Name, URL: u, Events: events, CreatedAt: ms(0)})
		}
	})
	h("DELETE", "/repos/{name}/webhooks/{id}", func(w http.ResponseWriter, r *http.Request, _ map[string]any) { w.WriteHeader(204) })
	h("GET", "/repos/{name}/webhooks/{id}/deliveries", func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
		writeJSONT(w, 200, []client.Delivery{
			{ID: "dlv000000002", WebhookID: "hook00000001", RepoName: "app", Event: "workflow", URL: "https://ci.example.com/hook", Status: "pending",
				Attempts: 1, MaxAttempts: 4, CreatedAt: ms(89 * time.Minute), LastAttemptAt: ms(89 * time.Minute), NextAttemptAt: ms(90*time.Minute + 30*time.Second), ResponseStatus: 502, Error: "HTTP 502"},
			{ID: "dlv000000001", WebhookID: "hook00000001", RepoName: "app", Event: "push", URL: "https://ci.example.com/hook", Status: "success",
				Attempts: 1, MaxAttempts: 4, CreatedAt: ms(-20 * time.Minute), LastAttemptAt: ms(-20 * time.Minute), ResponseStatus: 204},
		})
	})
	h("POST", "/repos/{name}/webhooks/{id}/deliveries/{delivery}/retry", func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
		writeJSONT(w, 202, map[string]string{"message": "Delivery retried"})
	})
}

func (f *fakeAPI) runRoutes(h handleFn) {
	h("POST", "/repos/{name}/workflows", func(w http.ResponseWriter, r *http.Request, b map[string]any) {
		if repo := f.repo(w, r); repo != nil {
			branch, _ := b["branch"].(string)
			id := "run00000000" + fmt.Sprint(len(f.runs)+1)
			f.addRun(&forge.Run{ID: id, RepoName: repo.Name, Branch: branch, Trigger: forge.TriggerManual, Status: forge.RunCompleted, CreatedAt: ms(0), StartedAt: ms(0), CompletedAt: ms(2 * time.Second),
				Result: &forge.Result{Success: branch != "broken", Duration: 2000, Steps: []forge.StepResult{{Name: "build", Success: branch != "broken", Duration: 2000}}}},
				"==> build\nline 1\nline 2\n")
			if branch == "broken" {
				f.runs[id].Status = forge.RunFailed
				f.runs[id].Result.Steps[0].Error = "step failed with exit code 2"
			}
			writeJSONT(w, 202, map[string]string{"id": id, "status": "queued", "message": "Workflow run queued"})
		}
	})
	h("GET", "/repos/{name}/workflows", func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
		if repo := f.repo(w, r); repo != nil {
			writeJSONT(w, 200, f.runsOf(repo.Name))
		}
	})
	h("GET", "/repos/{name}/workflows/{id}", func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
		if run, ok := f.runs[vars(r, "id")]; ok {
			writeJSONT(w, 200, run)
			return
		}
		fail(w, 404, "Workflow run not found")
	})
	h("GET", "/repos/{name}/workflows/{id}/logs", func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
		log, ok := f.logs[vars(r, "id")]
		if !ok {
			fail(w, 404, "Workflow run not found")
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if r.URL.Query().Get("follow") == "true" && !f.follow {
			fail(w, 400, "follow is not supported")
			return
		}
		fl, _ := w.(http.Flusher)
		for _, line := range strings.SplitAfter(log, "\n") {
			fmt.Fprint(w, line)
			if fl != nil {
				fl.Flush()
			}
		}
	})
	h("POST", "/repos/{name}/workflows/{id}/cancel", func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
		writeJSONT(w, 202, map[string]string{"id": vars(r, "id"), "message": "Workflow run cancellation requested"})
	})
	h("GET", "/workflows/status", func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
		writeJSONT(w, 200, map[string]any{"summary": map[string]int{"queued": 0, "running": 0, "completed": 1, "failed": 1}, "recent": f.runsOf("app")})
	})
}

// runsOf returns the runs of repo, newest first.
func (f *fakeAPI) runsOf(repo string) []*forge.Run {
	var out []*forge.Run
	for _, r := range f.runs {
		if r.RepoName == repo {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b *forge.Run) int { return strings.Compare(b.ID, a.ID) })
	return out
}
