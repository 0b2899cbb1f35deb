package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath finds Debian's chromium (scripts/setup installs it), or
// KOD_CHROMIUM. Without it a browser test skips, except under CI=true
// where it fails: CI must run them.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("KOD_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("Chromium is not installed (run scripts/setup, or set KOD_CHROMIUM): browser tests must run in CI")
	}
	t.Skip("Chromium is not installed (scripts/setup installs it); skipping the browser tests")
	return ""
}

// browser is a headless Chromium for one test; tab contexts come from it.
type browser struct {
	t   *testing.T
	ctx context.Context
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := chromiumPath(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // tests may run as root, where Chromium's sandbox cannot start
		chromedp.WindowSize(1440, 900),
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	alloc, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	t.Cleanup(cancelCtx)
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("starting Chromium (%s): %v", path, err)
	}
	return &browser{t: t, ctx: ctx}
}

// tab opens a tab; isolated tabs get their own cookie jar (another
// person's browser).
func (b *browser) tab(isolated bool) context.Context {
	b.t.Helper()
	var opts []chromedp.ContextOption
	if isolated {
		opts = append(opts, chromedp.WithNewBrowserContext())
	}
	ctx, cancel := chromedp.NewContext(b.ctx, opts...)
	b.t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		b.t.Fatal(err)
	}
	return ctx
}

// do runs browser actions, failing the test on error; every step gets a
// generous deadline that only catches hangs.
func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("browser: %v", err)
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// waitPage polls a JavaScript condition until it is true; the deadline
// only catches hangs (a loaded machine is slow, never this slow).
func waitPage(t *testing.T, ctx context.Context, what, cond string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+cond+")"))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			html, _ := chromedp.Run(ctx, chromedp.Evaluate[string]("document.body ? document.body.innerText.slice(0, 3000) : ''"))
			t.Fatalf("waiting for %s (%s): err %v; page text:\n%s", what, cond, err, html)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// signIn signs in through the form with token.
func signIn(t *testing.T, ctx context.Context, s *server, token string) {
	t.Helper()
	do(t, ctx,
		chromedp.Navigate(s.URL+"/ui/signin"),
		chromedp.WaitVisible("#token"),
		chromedp.SendKeys("#token", token),
		chromedp.Click("form[action='/ui/signin'] button[type=submit]"),
	)
	waitPage(t, ctx, "the repository list", `location.pathname === "/ui/" && document.querySelector("h1") && document.querySelector("h1").textContent === "Repositories"`)
}

func jsString(s string) string { return fmt.Sprintf("%q", s) }

func contains(haystack string, needles ...string) bool {
	for _, n := range needles {
		if !strings.Contains(haystack, n) {
			return false
		}
	}
	return true
}
