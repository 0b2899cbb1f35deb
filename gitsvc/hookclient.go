package gitsvc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"time"
	"unicode/utf8"

	"github.com/kod-forge/kod/forge"
)

// Limits of what a hook accepts on stdin; anything beyond refuses the push
// (fail closed).
const (
	maxHookLine    = 4096
	maxHookUpdates = 100_000
)

var updateRE = regexp.MustCompile(`^([0-9a-f]{40}|[0-9a-f]{64}) ([0-9a-f]{40}|[0-9a-f]{64}) (refs/\S+)$`)

// RunHook is `kod hook <name>`, run by git inside receive-pack. It reads the
// ref updates from stdin, asks the server over its unix socket, prints the
// server's messages to stderr (git shows them to the pusher as "remote:")
// and returns the exit status: 0 accepts, anything else refuses.
//
// It fails closed: a missing credential, an unreadable or over-long input
// line, or an unreachable server refuse a pre-receive. A post-receive cannot
// undo the push, so there it only warns.
func RunHook(ctx context.Context, name string, stdin io.Reader, stderr io.Writer, getenv func(string) string) int {
	if name != "pre-receive" && name != "post-receive" {
		fmt.Fprintf(stderr, "kod: unknown hook %q\n", name)
		return 2
	}
	refuse := func(format string, args ...any) int {
		fmt.Fprintf(stderr, "kod: "+format+"\n", args...)
		if name == "post-receive" {
			return 0
		}
		fmt.Fprintln(stderr, "kod: push refused")
		return 1
	}
	socket, cred := getenv(EnvHookSocket), getenv(EnvHookToken)
	if socket == "" || cred == "" {
		return refuse("this repository only accepts pushes through the kod server")
	}
	updates, err := readUpdates(stdin)
	if err != nil {
		return refuse("%v", err)
	}
	resp, err := callHook(ctx, socket, cred, name, updates)
	if err != nil {
		// The error names the server's data dir: not for the pusher.
		if name == "pre-receive" {
			return refuse("cannot reach the kod server to check this push; nothing was changed (try again; if it persists, the server's log says why)")
		}
		return refuse("could not reach the kod server after the push: the server queues its runs itself once the push ends (if they do not appear, trigger one with POST /repos/:name/workflows)")
	}
	for _, m := range resp.Messages {
		fmt.Fprintln(stderr, m)
	}
	if !resp.OK && name == "pre-receive" {
		fmt.Fprintln(stderr, "kod: push refused")
		return 1
	}
	return 0
}

func readUpdates(r io.Reader) ([]forge.RefUpdate, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1024), maxHookLine)
	var updates []forge.RefUpdate
	for sc.Scan() {
		line := sc.Text()
		m := updateRE.FindStringSubmatch(line)
		if m == nil {
			return nil, fmt.Errorf("malformed ref update line %q", truncate(line, 200))
		}
		if !utf8.ValidString(m[3]) {
			// kod keeps ref names as text (run records, webhooks, the API,
			// JSON): invalid bytes would all become U+FFFD and two
			// different branches would share one name there.
			return nil, fmt.Errorf("ref name %q is not valid UTF-8; kod accepts only UTF-8 ref names: rename the branch or tag", m[3])
		}
		if len(updates) == maxHookUpdates {
			return nil, fmt.Errorf("more than %d ref updates in one push", maxHookUpdates)
		}
		updates = append(updates, forge.RefUpdate{Old: m[1], New: m[2], Ref: m[3]})
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("ref update line longer than %d bytes", maxHookLine)
		}
		return nil, fmt.Errorf("reading ref updates: %w", err)
	}
	return updates, nil
}

func callHook(ctx context.Context, socket, cred, name string, updates []forge.RefUpdate) (*hookResponse, error) {
	body, err := json.Marshal(hookRequest{Updates: updates})
	if err != nil {
		return nil, err
	}
	client := &http.Client{
		Timeout: 2 * time.Minute,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		}},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://kod/v1/"+name, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+cred)
	req.Header.Set("Content-Type", "application/json")
	res, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	var out hookResponse
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&out); err != nil {
		return nil, fmt.Errorf("reading the server's answer (HTTP %d): %w", res.StatusCode, err)
	}
	if res.StatusCode != http.StatusOK {
		out.OK = false
	}
	return &out, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
