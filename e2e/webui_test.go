package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/kod-forge/kod/forge"
)

// uiTOML's first step prints a line, sleeps 2 s and prints another (the
// live log must show the first before the second exists); its second
// prints ANSI colour, a progress line and HTML that must stay text.
const uiTOML = `[[steps]]
name = "slow"
run = '''
echo first-line
sleep 2
echo second-line
'''

[[steps]]
name = "output"
run = '''
printf '\033[31mred-text\033[0m plain\n'
printf 'progress 10%%\rprogress 50%%\rprogress 100%%\n'
echo '<script>alert(1)</script>'
echo '<img src=x onerror=alert(2)>'
'''
`

// TestWebUI drives the web UI in real Chromium against kod serve: sign-in,
// what a collaborator sees, a run going queued -> running -> completed on
// its page without reload with its log arriving live, ANSI colour, output
// that must not become markup, progress lines, cancel, deep links, a
// 100,000-line step, screenshots, sign-out, CSRF and deleted tokens.
func TestWebUI(t *testing.T) {
	b := newBrowser(t)
	s := startServer(t, "", nil, "--max-concurrent-runs", "1")
	for _, name := range []string{"app", "other", "big"} {
		s.createRepo(name)
	}
	s.mustDo("POST", "/repos/app/collaborators", adminToken, map[string]string{"username": "alice"}, http.StatusCreated, nil)
	var alice struct{ ID, Token string }
	s.mustDo("POST", "/tokens", adminToken, map[string]any{"name": "alice", "username": "alice", "permissions": []string{"repo:read", "workflow:read"}}, http.StatusCreated, &alice)

	// A run that holds the only run slot, so the next one stays queued
	// until it is cancelled from its page.
	blocker := newProject(t, "main", map[string]string{".kod/workflows/ci.toml": "[[steps]]\nname = \"block\"\nrun = \"sleep 300\"\n"})
	blocker.git("push", s.gitURL("other", adminToken), "main")
	blockRun := waitStatus(t, s, "other", forge.RunRunning)
	p := newProject(t, "main", map[string]string{".kod/workflows/ci.toml": uiTOML})
	p.git("push", s.gitURL("app", adminToken), "main")
	appRun := s.runs("app")[0]
	if appRun.Status != forge.RunQueued {
		t.Fatalf("the app run is %s, want queued behind the blocker", appRun.Status)
	}
	runURL := s.URL + "/ui/repos/app/runs/" + appRun.ID

	tab := b.tab(false)
	var dialogs atomic.Int32
	go func() {
		for _, err := range chromedp.Events(tab, page.JavascriptDialogOpening) {
			if err != nil {
				return
			}
			dialogs.Add(1)
		}
	}()
	signIn(t, tab, s, adminToken)
	if n := eval[int](t, tab, `document.querySelectorAll(".repo").length`); n != 3 {
		t.Errorf("the admin sees %d repositories, want 3", n)
	}

	t.Log("the run page follows the run from queued to completed without reload")
	do(t, tab, chromedp.Navigate(runURL))
	waitPage(t, tab, "the queued run page", `document.getElementById("run") && document.getElementById("run").dataset.ready === "true"`)
	eval[bool](t, tab, `(() => { const r = document.getElementById("run"); window.seen = [r.dataset.status];
		new MutationObserver(() => { if (window.seen[window.seen.length-1] !== r.dataset.status) window.seen.push(r.dataset.status); })
		.observe(r, {attributes: true, attributeFilter: ["data-status"]}); window.loads = performance.getEntriesByType("navigation").length; return true; })()`)
	if got := eval[string](t, tab, `document.getElementById("favicon").getAttribute("href")`); !strings.HasSuffix(got, "fav-queued.svg") {
		t.Errorf("favicon of a queued run: %s", got)
	}

	cancelTab := b.tab(false)
	do(t, cancelTab, chromedp.Navigate(s.URL+"/ui/repos/other/runs/"+blockRun.ID))
	waitPage(t, cancelTab, "the cancel button", `document.getElementById("cancel")`)
	do(t, cancelTab, chromedp.Click("#cancel"))
	waitPage(t, cancelTab, "the cancelled state", `document.getElementById("run") && document.getElementById("run").dataset.status === "cancelled"`)
	if run := s.waitRun("other", blockRun.ID, 60*time.Second); run.Status != forge.RunCancelled {
		t.Errorf("the run cancelled from its page is %s", run.Status)
	}

	waitPage(t, tab, "the run to complete", `document.getElementById("run").dataset.status === "completed"`)
	seen := eval[[]string](t, tab, `window.seen`)
	if strings.Join(seen, ",") != "queued,running,completed" {
		t.Errorf("states seen on the page: %v, want queued, running, completed", seen)
	}
	if eval[bool](t, tab, `window.loads === undefined`) {
		t.Error("the page was reloaded")
	}
	// Arrival times of the two lines, stamped by the page as each line
	// came in: the first arrived while the step still slept.
	gap := eval[float64](t, tab, `(() => { const rows = [...document.querySelectorAll('li.step[data-step="0"] .l')];
		const at = w => Date.parse(rows.find(r => r.querySelector(".t").textContent === w).querySelector(".ts").title);
		return at("second-line") - at("first-line"); })()`)
	if gap < 1000 {
		t.Errorf("first-line arrived %.0f ms before second-line; it must arrive while the step sleeps 2 s", gap)
	}
	if got := eval[string](t, tab, `getComputedStyle([...document.querySelectorAll(".log span")].find(e => e.textContent === "red-text")).color`); got != "rgb(255, 123, 114)" {
		t.Errorf("ANSI red text has colour %q", got)
	}
	text := eval[string](t, tab, `document.querySelector('li.step[data-step="1"] .lines').textContent`)
	if !contains(text, "<script>alert(1)</script>", "<img src=x onerror=alert(2)>") {
		t.Errorf("the HTML printed by the step is not shown as text: %q", text)
	}
	if n := eval[int](t, tab, `document.querySelectorAll("#run .log img, #run .log script").length`); n != 0 || dialogs.Load() != 0 {
		t.Errorf("output became markup: %d elements, %d dialogs", n, dialogs.Load())
	}
	rows := eval[[]string](t, tab, `[...document.querySelectorAll('li.step[data-step="1"] .l .t')].map(e => e.textContent)`)
	if len(rows) < 2 || rows[1] != "progress 100%" {
		t.Errorf("a progress line written over with \\r shows as %q", rows)
	}
	if got := eval[string](t, tab, `document.title`); !strings.HasPrefix(got, "✓ completed") {
		t.Errorf("title of a completed run: %q", got)
	}
	if got := eval[string](t, tab, `document.getElementById("favicon").getAttribute("href")`); !strings.HasSuffix(got, "fav-completed.svg") {
		t.Errorf("favicon of a completed run: %s", got)
	}
	// The renderer's table: what each input becomes (text and style).
	if bad := eval[[]string](t, tab, ansiCases); len(bad) > 0 {
		t.Errorf("ANSI renderer: %s", strings.Join(bad, "; "))
	}
	screenshots(t, tab, "run")
	for page, path := range map[string]string{"repos": "/ui/", "repo": "/ui/repos/app", "runs": "/ui/runs"} {
		do(t, tab, chromedp.Navigate(s.URL+path))
		screenshots(t, tab, page)
	}

	t.Log("a deep link scrolls to its line and highlights it")
	do(t, tab, chromedp.Navigate(runURL+"#step-1-L3"))
	waitPage(t, tab, "the highlighted line", `document.querySelector(".l.hl") && document.querySelector(".l.hl").id === "step-1-L3"`)
	if !eval[bool](t, tab, `(() => { const r = document.getElementById("step-1-L3").getBoundingClientRect(); return r.top >= 0 && r.bottom <= innerHeight; })()`) {
		t.Error("the linked line is not in view")
	}

	t.Log("a 100,000-line step opens with its last 1,000 lines")
	bigRun := pushAndWait(t, s, "big", "[[steps]]\nname = \"count\"\nrun = \"seq 1 100000\"\n")
	do(t, tab, chromedp.Navigate(s.URL+"/ui/repos/big/runs/"+bigRun.ID))
	waitPage(t, tab, "the big run page", `document.getElementById("run").dataset.ready === "true"`)
	do(t, tab, chromedp.Click(`li.step[data-step="0"] summary`))
	waitPage(t, tab, "the big step's lines", `document.querySelector('li.step[data-step="0"]').dataset.loaded === "true"`)
	ms := eval[float64](t, tab, `Number(document.querySelector('li.step[data-step="0"]').dataset.loadMs)`)
	t.Logf("a 100,000-line step opened (fetch + render of its last 1,000 lines) in %.0f ms", ms)
	if n := eval[int](t, tab, `document.querySelectorAll('li.step[data-step="0"] .l').length`); n != 1000 {
		t.Errorf("the big step rendered %d lines, want the last 1000", n)
	}
	if !eval[bool](t, tab, `!!document.getElementById("step-0-L100000") && document.getElementById("step-0-L100000").textContent.endsWith("100000")`) {
		t.Error("line 100000 is not shown")
	}
	// Loose bound: the claim is under 1 s; a loaded 2-core machine gets 5.
	if ms > 5000 {
		t.Errorf("opening the 100,000-line step took %.0f ms", ms)
	}
	// The baseline, for the figures only (KOD_UI_FIGURES=1): the same step
	// fetched whole and every line rendered, as a UI without windows does.
	// It takes seconds to tens of seconds on a loaded machine, so the suite
	// leaves it out.
	if os.Getenv("KOD_UI_FIGURES") == "1" {
		whole := eval[float64](t, tab, `(async () => { const t0 = performance.now();
		const text = await (await fetch(location.pathname + "/log?step=count")).text();
		const box = document.createElement("div"); document.body.appendChild(box);
		for (const line of text.split("\n")) { const r = document.createElement("div"); KodAnsi.render(r, KodAnsi.parse(line, {}).runs); box.appendChild(r); }
		void box.offsetHeight; const ms = performance.now() - t0; box.remove(); return ms; })()`)
		t.Logf("figure: opening a 100,000-line step: last 1,000 lines %.0f ms, whole log rendered %.0f ms (%.1fx)", ms, whole, whole/ms)
	}
	do(t, tab, chromedp.Click(`li.step[data-step="0"] button.earlier`))
	waitPage(t, tab, "earlier lines", `document.querySelectorAll('li.step[data-step="0"] .l').length === 2000 && document.getElementById("step-0-L99001")`)
	// The whole page, from navigation start: HTML, scripts, the window
	// holding the linked last line, rendered and highlighted.
	do(t, tab, chromedp.Navigate("about:blank"), chromedp.Navigate(s.URL+"/ui/repos/big/runs/"+bigRun.ID+"#step-0-L100000"))
	waitPage(t, tab, "the deep-linked big step", `document.getElementById("run") && document.getElementById("run").dataset.ready === "true" && document.querySelector(".l.hl")`)
	nav := eval[float64](t, tab, `Number(document.getElementById("run").dataset.readyMs)`)
	t.Logf("figure: a link to line 100,000 of the step: page ready %.0f ms after navigation start", nav)
	if nav > 5000 {
		t.Errorf("the page linking into the 100,000-line step took %.0f ms", nav)
	}

	t.Log("a step flooding its live log keeps the page bounded")
	flood := newProject(t, "main", map[string]string{".kod/workflows/ci.toml": "[[steps]]\nname = \"flood\"\nrun = \"sleep 3; seq 1 30000\"\n"})
	flood.git("push", "--force", s.gitURL("big", adminToken), "main")
	floodRun := s.runs("big")[0]
	do(t, tab, chromedp.Navigate(s.URL+"/ui/repos/big/runs/"+floodRun.ID))
	waitPage(t, tab, "the flood to end", `document.getElementById("run").dataset.status === "completed" && document.getElementById("step-0-L30000")`)
	if n := eval[int](t, tab, `document.querySelectorAll('li.step[data-step="0"] .l').length`); n > 3000 {
		t.Errorf("a 30,000-line live log kept %d rows on the page", n)
	}
	if live := eval[bool](t, tab, `!!document.querySelector('li.step[data-step="0"] .l .ts[title]')`); !live {
		t.Log("the flood finished before the page followed it: its window was read after the fact")
	}
	do(t, tab, chromedp.Click(`li.step[data-step="0"] button.earlier`))
	waitPage(t, tab, "lines before the live window", `document.getElementById("step-0-L" + (Number(document.querySelector('li.step[data-step="0"] .l .n').textContent)))
		&& document.querySelectorAll('li.step[data-step="0"] .l').length > 2000`)
	if !eval[bool](t, tab, `(() => { const ns = [...document.querySelectorAll('li.step[data-step="0"] .l .n')].map(a => Number(a.textContent));
		return ns.every((n, i) => i === 0 || n === ns[i-1] + 1) && ns[ns.length-1] === 30000; })()`) {
		t.Error("after loading earlier lines the numbers are not consecutive up to 30000")
	}

	t.Log("auto-scroll follows a live step until the reader scrolls up")
	slow := newProject(t, "main", map[string]string{".kod/workflows/ci.toml": "[[steps]]\nname = \"trickle\"\nrun = \"for i in $(seq 1 300); do echo line $i; sleep 0.05; done\"\n"})
	slow.git("push", "--force", s.gitURL("big", adminToken), "main")
	trickle := s.runs("big")[0]
	do(t, tab, chromedp.Navigate(s.URL+"/ui/repos/big/runs/"+trickle.ID))
	rowCount := `document.querySelectorAll('li.step[data-step="0"] .l').length`
	atBottom := `(innerHeight + scrollY >= document.documentElement.scrollHeight - 60)`
	waitPage(t, tab, "a log taller than the window, followed", rowCount+` > 60 && document.getElementById("run").dataset.follow === "true" && `+atBottom)
	eval[bool](t, tab, `(() => { window.scrollTo(0, 0); return true; })()`)
	waitPage(t, tab, "following to stop", `document.getElementById("run").dataset.follow === "false"`)
	seenRows := eval[int](t, tab, rowCount)
	waitPage(t, tab, "more lines while scrolled up", rowCount+` > `+fmt.Sprint(seenRows+20))
	if y := eval[float64](t, tab, `scrollY`); y != 0 {
		t.Errorf("the page scrolled to %.0f while the reader was reading above", y)
	}
	do(t, tab, chromedp.Click("#follow"))
	waitPage(t, tab, "following again", `document.getElementById("run").dataset.follow === "true" && `+atBottom)
	s.waitRun("big", trickle.ID, 120*time.Second)

	t.Log("the list pages work without JavaScript")
	noJS := b.tab(false)
	do(t, noJS, func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tg, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
		return chromedp.Void{}, err
	}, chromedp.Navigate(s.URL+"/ui/runs?repo=app&status=completed"))
	if got := eval[[]string](t, noJS, `[...document.querySelectorAll("tr.run")].map(r => r.dataset.status)`); strings.Join(got, ",") != "completed" {
		t.Errorf("runs filtered without JavaScript: %v", got)
	}
	if !eval[bool](t, noJS, `document.querySelectorAll(".repo").length === 0 && document.querySelector("form.filters select[name=status] option[selected]").textContent === "completed"`) {
		t.Error("the filter form does not show the filter")
	}

	t.Log("a collaborator sees only their repositories; deleting their token ends their session")
	aliceTab := b.tab(true)
	signIn(t, aliceTab, s, alice.Token)
	if got := eval[[]string](t, aliceTab, `[...document.querySelectorAll(".repo")].map(e => e.dataset.repo)`); strings.Join(got, ",") != "app" {
		t.Errorf("alice sees %v, want only app", got)
	}
	do(t, aliceTab, chromedp.Navigate(s.URL+"/ui/repos/other"))
	if got := eval[string](t, aliceTab, `document.querySelector("main").textContent`); !strings.Contains(got, "Access denied") {
		t.Errorf("alice opening another repository: %q", got)
	}
	s.mustDo("DELETE", "/tokens/"+alice.ID, adminToken, nil, http.StatusNoContent, nil)
	do(t, aliceTab, chromedp.Navigate(s.URL+"/ui/"))
	waitPage(t, aliceTab, "the sign-in page", `location.pathname === "/ui/signin"`)

	t.Log("a form on another site cannot act with the session")
	runsBefore := len(s.runs("app"))
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<form method="post" action="%s/ui/repos/app/trigger"><input name="branch" value="main"></form><script>document.forms[0].submit()</script>`, s.URL)
	}))
	defer evil.Close()
	// From another host (the cookie stays home) and from another port of
	// the same host (the browser sends the cookie, but no CSRF token).
	for _, host := range []string{"localhost", "127.0.0.1"} {
		do(t, tab, chromedp.Navigate(strings.Replace(evil.URL, "127.0.0.1", host, 1)))
		waitPage(t, tab, "the refusal", `location.pathname === "/ui/repos/app/trigger" && /refused|CSRF/.test(document.body.textContent)`)
		if n := len(s.runs("app")); n != runsBefore {
			t.Errorf("a form on %s queued a run (%d runs, had %d)", host, n, runsBefore)
		}
	}

	t.Log("sign-out from the page ends the session")
	do(t, tab, chromedp.Navigate(s.URL+"/ui/runs"), chromedp.Click("form.signout button"))
	waitPage(t, tab, "the sign-in page", `location.pathname === "/ui/signin"`)
	do(t, tab, chromedp.Navigate(s.URL+"/ui/runs"))
	waitPage(t, tab, "the sign-in page again", `location.pathname === "/ui/signin"`)
}

// TestWebUISessionsAndCSRF checks, over HTTP as a browser speaks it, that
// a session cookie alone cannot change anything (CSRF token and origin
// checks), that a signed-out session id is dead, and the headers every
// page carries.
func TestWebUISessionsAndCSRF(t *testing.T) {
	s := startServer(t, "", nil)
	s.createRepo("app")
	c := newUIClient(t, s)
	csrf := c.signIn(adminToken)
	res := c.post("/ui/repos/app/trigger", url.Values{"branch": {"main"}}, nil)
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("a POST without the CSRF token: %d, want 403", res.StatusCode)
	}
	res = c.post("/ui/repos/app/trigger", url.Values{"branch": {"main"}, "csrf": {csrf}}, http.Header{"Origin": {"http://evil.example"}, "Sec-Fetch-Site": {"cross-site"}})
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("a cross-site POST with the token: %d, want 403", res.StatusCode)
	}
	res = c.post("/ui/repos/app/trigger", url.Values{"branch": {"main"}, "csrf": {csrf}}, nil)
	if res.StatusCode != http.StatusBadRequest { // the API's answer: the empty repository has no main
		t.Errorf("a same-site POST with the token: %d, want the API's 400", res.StatusCode)
	}
	page := c.get("/ui/")
	for h, want := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff"} {
		if got := page.Header.Get(h); got != want {
			t.Errorf("%s: %q, want %q", h, got, want)
		}
	}
	if csp := page.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("Content-Security-Policy: %q", csp)
	}
	cookie := c.session()
	if !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || strings.Contains(cookie.Value, adminToken) {
		t.Errorf("session cookie: %+v", cookie)
	}
	if res := c.post("/ui/signout", url.Values{"csrf": {csrf}}, nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", res.StatusCode)
	}
	// The old session id, replayed, is dead.
	c.jar.SetCookies(c.base, []*http.Cookie{cookie})
	if res := c.get("/ui/"); res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/ui/signin") {
		t.Errorf("a signed-out session: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	// A browser asking for / gets the UI; API clients keep the API.
	req, _ := http.NewRequest("GET", s.URL+"/", nil)
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	if res := c.do(req); res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/ui/" {
		t.Errorf("GET / from a browser: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	if status, _ := s.do("GET", "/", "", nil); status != http.StatusUnauthorized {
		t.Errorf("GET / from an API client: %d, want the API's 401", status)
	}
}

// uiClient is an HTTP client with a cookie jar that does not follow
// redirects.
type uiClient struct {
	t    *testing.T
	s    *server
	jar  *cookiejar.Jar
	base *url.URL
	hc   *http.Client
	// cookie is the session cookie as the server set it (the jar keeps
	// only name and value).
	cookie *http.Cookie
}

func newUIClient(t *testing.T, s *server) *uiClient {
	jar, _ := cookiejar.New(nil)
	base, _ := url.Parse(s.URL + "/ui/")
	return &uiClient{t: t, s: s, jar: jar, base: base, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (c *uiClient) do(req *http.Request) *http.Response {
	c.t.Helper()
	res, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	res.Body = io.NopCloser(bytes.NewReader(body))
	return res
}

func (c *uiClient) get(path string) *http.Response {
	req, _ := http.NewRequest("GET", c.s.URL+path, nil)
	return c.do(req)
}

func (c *uiClient) post(path string, form url.Values, h http.Header) *http.Response {
	req, _ := http.NewRequest("POST", c.s.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range h {
		req.Header[k] = v
	}
	return c.do(req)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// signIn posts the sign-in form and returns the session's CSRF token.
func (c *uiClient) signIn(token string) string {
	c.t.Helper()
	res := c.get("/ui/signin")
	body, _ := io.ReadAll(res.Body)
	m := csrfRE.FindSubmatch(body)
	if m == nil {
		c.t.Fatalf("no CSRF field in the sign-in form:\n%s", body)
	}
	res = c.post("/ui/signin", url.Values{"csrf": {string(m[1])}, "token": {token}}, nil)
	if res.StatusCode != http.StatusSeeOther {
		c.t.Fatalf("sign-in: %d", res.StatusCode)
	}
	for _, ck := range res.Cookies() {
		if ck.Name == "kod_session" {
			c.cookie = ck
		}
	}
	res = c.get("/ui/")
	body, _ = io.ReadAll(res.Body)
	if m = csrfRE.FindSubmatch(body); res.StatusCode != http.StatusOK || m == nil {
		c.t.Fatalf("after sign-in: %d\n%s", res.StatusCode, body)
	}
	return string(m[1])
}

func (c *uiClient) session() *http.Cookie {
	c.t.Helper()
	if c.cookie == nil {
		c.t.Fatal("no session cookie was set")
	}
	return c.cookie
}

// waitStatus waits until repo's newest run has status.
func waitStatus(t *testing.T, s *server, repo string, status forge.RunStatus) forge.Run {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		if runs := s.runs(repo); len(runs) > 0 && runs[0].Status == status {
			return runs[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s run of %s after 90 s:\n%s", status, repo, s.Logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// pushAndWait pushes a one-workflow project to repo and waits for its run.
func pushAndWait(t *testing.T, s *server, repo, workflow string) forge.Run {
	t.Helper()
	p := newProject(t, "main", map[string]string{".kod/workflows/ci.toml": workflow})
	p.git("push", s.gitURL(repo, adminToken), "main")
	run := s.waitRun(repo, s.runs(repo)[0].ID, 120*time.Second)
	if run.Status != forge.RunCompleted {
		t.Fatalf("the %s run is %s: %s", repo, run.Status, run.Error)
	}
	return run
}

// screenshots saves the page at desktop (1440 px) and phone (375 px) width
// in the test's temp dir (or KOD_SCREENSHOT_DIR); for the run page
// KOD_UPDATE_SCREENSHOT=1 also refreshes
// docs/ui-run.png and docs/ui-run-phone.png. At phone width nothing may overflow sideways.
func screenshots(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	dir := os.Getenv("KOD_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	for _, size := range []struct {
		name string
		w, h int64
	}{{"desktop", 1440, 900}, {"phone", 375, 812}} {
		do(t, ctx, chromedp.EmulateViewport(size.w, size.h))
		if w := eval[int](t, ctx, `document.documentElement.scrollWidth`); int64(w) > size.w {
			t.Errorf("at %d px the page is %d px wide: it overflows sideways", size.w, w)
		}
		shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, page+"-"+size.name+".png")
		if err := os.WriteFile(path, shot, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", path)
		if page == "run" && os.Getenv("KOD_UPDATE_SCREENSHOT") == "1" {
			name := map[string]string{"desktop": "ui-run.png", "phone": "ui-run-phone.png"}[size.name]
			if err := os.WriteFile(filepath.Join("..", "docs", name), shot, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	do(t, ctx, chromedp.EmulateViewport(1440, 900))
}

// ansiCases runs KodAnsi over inputs in the page and returns mismatches.
const ansiCases = `(() => {
	const show = runs => runs.map(r => r.t + JSON.stringify(r.s)).join("|");
	const cases = [
		["\x1b[1;31mA\x1b[0mB", 'A{"b":true,"fg":1}|B{}'],
		["\x1b[38;5;196mX\x1b[39mY", 'X{"fg":"rgb(255,0,0)"}|Y{}'],
		["\x1b[48;2;1;2;3mZ", 'Z{"bg":"rgb(1,2,3)"}'],
		["\x1b[92;4mgreen\x1b[24m", 'green{"fg":10,"u":true}'],
		["\x1b]0;title\x07after", 'after{}'],
		["a\x07b\x1b[2Jc\x1b(Bd", 'a{}|b{}|c{}|d{}'],
		["<b>&amp;</b>", '<b>&amp;</b>{}'],
	];
	const bad = [];
	for (const [input, want] of cases) {
		const got = show(KodAnsi.parse(input, {}).runs);
		if (got !== want) bad.push(JSON.stringify(input) + " -> " + got + ", want " + want);
	}
	const over = (a, b) => KodAnsi.overwrite(KodAnsi.parse(a, {}).runs, KodAnsi.parse(b, {}).runs, KodAnsi.parse(b, {}).erase).map(r => r.t).join("");
	if (over("progress 100%", "50%") !== "50%gress 100%") bad.push("overwrite: " + over("progress 100%", "50%"));
	if (over("progress 100%", "done\x1b[K") !== "done") bad.push("overwrite with erase: " + over("progress 100%", "done\x1b[K"));
	const box = document.createElement("div");
	KodAnsi.render(box, KodAnsi.parse("<img src=x onerror=alert(3)>\x1b[31m<script>alert(4)</script>", {}).runs);
	if (box.children.length !== 1 || box.querySelector("img,script") || box.textContent !== "<img src=x onerror=alert(3)><script>alert(4)</script>") bad.push("render made markup: " + box.innerHTML);
	return bad;
})()`
