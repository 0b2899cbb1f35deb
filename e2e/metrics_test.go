package e2e

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/kod-forge/kod/forge"
)

const metricsToken = "e2e-metrics-token"

// scrape GETs url with token (Bearer; "" = none) and parses the body with
// the Prometheus text parser; it returns the status and, on 200, the
// families by name.
func scrape(t *testing.T, url, token string) (int, map[string]*dto.MetricFamily) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		io.Copy(io.Discard, res.Body)
		return res.StatusCode, nil
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("parsing %s: %v", url, err)
	}
	return res.StatusCode, fams
}

// sample returns the value of the series of family name whose labels
// include want (counter, gauge, or a histogram's sample count), and
// whether it exists.
func sample(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// TestMetricsAfterPushRun: GET /metrics is refused without a token and to
// a token without admin, served to an admin token and to
// KOD_METRICS_TOKEN, and without auth on KOD_METRICS_ADDR; after a
// push-triggered run that sends webhooks, the run, step, delivery, git and
// HTTP series moved, and no HTTP label carries a raw path or a repository
// name.
func TestMetricsAfterPushRun(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", []string{"KOD_METRICS_TOKEN=" + metricsToken, "KOD_METRICS_ADDR=127.0.0.1:0",
		"KOD_WEBHOOK_ALLOWED_HOSTS=loopback"})
	if status, _ := scrape(t, s.URL+"/metrics", ""); status != http.StatusUnauthorized {
		t.Errorf("GET /metrics without a token: %d, want 401", status)
	}
	if status, _ := scrape(t, s.URL+"/metrics", "kod_not_a_token"); status != http.StatusUnauthorized {
		t.Errorf("GET /metrics with an unknown token: %d, want 401", status)
	}
	var tok struct{ Token string }
	s.mustDo("POST", "/tokens", adminToken, map[string]any{"name": "reader", "permissions": []string{"repo:read", "workflow:read"}}, http.StatusCreated, &tok)
	if status, _ := scrape(t, s.URL+"/metrics", tok.Token); status != http.StatusForbidden {
		t.Errorf("GET /metrics with a non-admin token: %d, want 403", status)
	}

	const repo = "metered-secret-project"
	s.createRepo(repo)
	receiver := newHookReceiver(t, "s", nil)
	s.createWebhook(repo, receiver.URL, "s", "push", "workflow")
	p := newProject(t, "main", map[string]string{".kod/workflows/ci.toml": "[[steps]]\nname = \"build\"\nrun = \"echo built\"\n\n[[steps]]\nname = \"test\"\nrun = \"true\"\n"})
	p.git("push", "-q", s.gitURL(repo, adminToken), "main")
	run := s.waitRun(repo, s.runs(repo)[0].ID, 2*time.Minute)
	if run.Status != forge.RunCompleted {
		t.Fatalf("run: %s %s", run.Status, run.Error)
	}
	waitFor(t, 30*time.Second, "push and workflow deliveries", func() bool { return len(receiver.requests()) >= 2 })
	s.mustDo("GET", "/repos/"+repo+"/workflows/"+run.ID, adminToken, nil, http.StatusOK, nil)
	s.do("GET", "/repos/"+repo+"/no-such-thing", adminToken, nil)

	var fams map[string]*dto.MetricFamily
	// The delivery counter moves after the receiver answered; wait for it.
	waitFor(t, 30*time.Second, "both deliveries counted", func() bool {
		var status int
		status, fams = scrape(t, s.URL+"/metrics", metricsToken)
		n, _ := sample(fams, "kod_webhook_deliveries_total", map[string]string{"outcome": "success"})
		return status == http.StatusOK && n >= 2
	})
	checks := []struct {
		name   string
		labels map[string]string
		min    float64
	}{
		{"kod_runs_finished_total", map[string]string{"result": "completed", "trigger": "push"}, 1},
		{"kod_run_duration_seconds", map[string]string{"result": "completed"}, 1},
		{"kod_run_queue_wait_seconds", nil, 1},
		{"kod_step_duration_seconds", map[string]string{"result": "success"}, 2},
		{"kod_git_operations_total", map[string]string{"transport": "http", "service": "git-receive-pack"}, 1},
		{"kod_http_requests_total", map[string]string{"route": "/repos/{name}/workflows/{id}", "method": "GET", "code": "200"}, 1},
		{"kod_http_requests_total", map[string]string{"route": "unmatched", "code": "404"}, 1},
		{"kod_build_info", map[string]string{"version": forge.Version}, 1},
	}
	for _, c := range checks {
		if v, ok := sample(fams, c.name, c.labels); !ok || v < c.min {
			t.Errorf("%s%v = %v (present %v), want >= %v", c.name, c.labels, v, ok, c.min)
		}
	}
	for _, g := range []struct {
		name   string
		labels map[string]string
	}{
		{"kod_runs_active", map[string]string{"status": "queued"}},
		{"kod_runs_active", map[string]string{"status": "running"}},
		{"kod_step_containers_executing", nil},
		{"kod_webhook_deliveries_pending", nil},
		{"kod_ssh_connections_open", nil},
	} {
		if v, ok := sample(fams, g.name, g.labels); !ok || v != 0 {
			t.Errorf("%s%v = %v (present %v), want 0 once everything ended", g.name, g.labels, v, ok)
		}
	}
	idLike := regexp.MustCompile(`^/repos/[^{]`)
	for _, name := range []string{"kod_http_requests_total", "kod_http_request_duration_seconds"} {
		for _, m := range fams[name].GetMetric() {
			for _, l := range m.GetLabel() {
				if strings.Contains(l.GetValue(), repo) || strings.Contains(l.GetValue(), run.ID) || idLike.MatchString(l.GetValue()) {
					t.Errorf("%s has a raw path or name as a label value: %s=%q", name, l.GetName(), l.GetValue())
				}
			}
		}
	}

	// The same exposition without auth on KOD_METRICS_ADDR, and with an
	// admin token on the API port.
	m := regexp.MustCompile(`serving /metrics without authentication" addr=(\S+)`).FindStringSubmatch(s.Logs())
	if m == nil {
		t.Fatalf("no metrics listener in the log:\n%s", s.Logs())
	}
	if status, fams := scrape(t, "http://"+m[1]+"/metrics", ""); status != http.StatusOK || fams["kod_runs_finished_total"] == nil {
		t.Errorf("KOD_METRICS_ADDR without auth: %d", status)
	}
	if status, _ := scrape(t, s.URL+"/metrics", adminToken); status != http.StatusOK {
		t.Errorf("GET /metrics with the admin token: %d", status)
	}
}
