package workflow

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/kod-forge/kod/forge"
)

// The [[services]] and [[caches]] tables of the TOML format:
//
//	[[services]]
//	name = "db"                      # required: hostname, [a-z0-9-], unique in the workflow
//	image = "postgres:16"            # required; may hold {matrix.AXIS}
//	pull = "never"                   # optional, as for steps
//	env = { POSTGRES_PASSWORD = "pw" }
//	command = ["postgres", "-c", "fsync=off"]   # optional: replaces the image's command
//	ready = "pg_isready -h 127.0.0.1"           # optional: run inside the service until it exits 0
//	ready_timeout = 60               # seconds, 1..3600 (default 60)
//	secrets = ["DB_PASSWORD"]        # repository secrets given to the service (none by default)
//
//	[[caches]]
//	path = "node_modules"            # absolute, or relative to the workspace
//	key = "npm-{hash:package-lock.json}-{branch}"
var (
	serviceKeys = []string{"name", "image", "pull", "env", "command", "ready", "ready_timeout", "secrets"}
	cacheKeys   = []string{"path", "key"}
)

// Limits and defaults of services and caches.
const (
	MaxServices         = 10
	MaxCaches           = 10
	DefaultReadyTimeout = 60 * time.Second
	MaxReadyTimeout     = time.Hour
	maxServiceName      = 63 // a DNS label
)

// workspacePath is sandbox.WorkspacePath (a test checks they agree): where
// steps see the workspace, which a cache must not cover.
const workspacePath = "/workspace"

func (p *tomlParser) services(tables []map[string]any) ([]Service, *ParseError) {
	if len(tables) > MaxServices {
		return nil, errAt(p.keys.line(MaxServices, "services"), "too many services: a workflow may have at most %d", MaxServices)
	}
	var out []Service
	for i, t := range tables {
		s, perr := p.service(i, t)
		if perr != nil {
			return nil, perr
		}
		if j := slices.IndexFunc(out, func(o Service) bool { return o.Name == s.Name }); j >= 0 {
			return nil, errAt(p.keys.line(i, "services", "name"), "duplicate service name %q (first used at line %d)", s.Name, out[j].Line)
		}
		out = append(out, s)
	}
	return out, nil
}

// service checks one [[services]] table; i is its 0-based index.
func (p *tomlParser) service(i int, t map[string]any) (Service, *ParseError) {
	s := Service{Line: p.keys.line(i, "services"), ReadyTimeout: DefaultReadyTimeout}
	v, ok := t["name"]
	if !ok {
		return s, errAt(s.Line, "service %d has no name", i+1)
	}
	var perr *ParseError
	if s.Name, perr = p.str(v, i, "services", "name"); perr != nil {
		return s, perr
	}
	if !validServiceName(s.Name) {
		return s, errAt(p.keys.line(i, "services", "name"), "service name %q: steps reach the service by this hostname, so use lowercase letters, digits and -, not at either end, at most %d characters", clip(s.Name), maxServiceName)
	}
	if v, ok = t["image"]; !ok {
		return s, errAt(s.Line, "service %q has no image", s.Name)
	}
	if s.Image, perr = p.image(v, i, "services", "image"); perr != nil {
		return s, perr
	}
	if v, ok := t["pull"]; ok {
		if s.Pull, perr = p.pull(v, i, "services", "pull"); perr != nil {
			return s, perr
		}
	}
	if v, ok := t["env"]; ok {
		if s.Env, perr = p.env(v, i, "services", "env"); perr != nil {
			return s, perr
		}
	}
	if v, ok := t["command"]; ok {
		if s.Command, perr = p.command(v, i); perr != nil {
			return s, perr
		}
	}
	if v, ok := t["ready"]; ok {
		if s.Ready, perr = p.str(v, i, "services", "ready"); perr != nil {
			return s, perr
		}
		if strings.TrimSpace(s.Ready) == "" {
			return s, errAt(p.keys.line(i, "services", "ready"), "service %q: ready is empty (leave it out: the service is then ready once started)", s.Name)
		}
	}
	if v, ok := t["ready_timeout"]; ok {
		n, isInt := v.(int64)
		if !isInt || n < 1 || n > int64(MaxReadyTimeout/time.Second) {
			return s, errAt(p.keys.line(i, "services", "ready_timeout"), "service %q: ready_timeout must be a whole number of seconds from 1 to %d, got %s", s.Name, int64(MaxReadyTimeout/time.Second), typeName(v))
		}
		s.ReadyTimeout = time.Duration(n) * time.Second
	}
	if v, ok := t["secrets"]; ok {
		if s.Secrets, perr = p.secretNames(v, i); perr != nil {
			return s, perr
		}
	}
	return s, nil
}

func validServiceName(n string) bool {
	if n == "" || len(n) > maxServiceName || n[0] == '-' || n[len(n)-1] == '-' {
		return false
	}
	for i := 0; i < len(n); i++ {
		if c := n[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// command reads a service's command: a non-empty array of strings (argv),
// the first naming the program.
func (p *tomlParser) command(v any, i int) ([]string, *ParseError) {
	line := p.keys.line(i, "services", "command")
	list, ok := v.([]any)
	if !ok || len(list) == 0 {
		return nil, errAt(line, "command must be a non-empty array of strings (command = [\"postgres\", \"-c\", \"fsync=off\"]), got %s", typeName(v))
	}
	out := make([]string, 0, len(list))
	for _, e := range list {
		s, ok := e.(string)
		if !ok {
			return nil, errAt(line, "command must hold only strings, found %s", typeName(e))
		}
		out = append(out, s)
	}
	if strings.TrimSpace(out[0]) == "" {
		return nil, errAt(line, "command starts with an empty program name")
	}
	return out, nil
}

// secretNames reads a service's secrets: names of repository secrets
// (variable names), each once.
func (p *tomlParser) secretNames(v any, i int) ([]string, *ParseError) {
	list, perr := p.stringList(v, i, "services", "secrets")
	if perr != nil {
		return nil, perr
	}
	line := p.keys.line(i, "services", "secrets")
	for k, n := range list {
		if !validEnvName(n) {
			return nil, errAt(line, "secrets: %q is not a secret name (letters, digits and _, not starting with a digit)", clip(n))
		}
		if slices.Contains(list[:k], n) {
			return nil, errAt(line, "secrets names %q twice", n)
		}
	}
	return list, nil
}

func (p *tomlParser) caches(tables []map[string]any) ([]Cache, *ParseError) {
	if len(tables) > MaxCaches {
		return nil, errAt(p.keys.line(MaxCaches, "caches"), "too many caches: a workflow may have at most %d", MaxCaches)
	}
	var out []Cache
	for i, t := range tables {
		c := Cache{Line: p.keys.line(i, "caches")}
		v, ok := t["path"]
		if !ok {
			return nil, errAt(c.Line, "cache %d has no path", i+1)
		}
		raw, perr := p.str(v, i, "caches", "path")
		if perr != nil {
			return nil, perr
		}
		var err error
		if c.Path, err = cleanCachePath(raw); err != nil {
			return nil, errAt(p.keys.line(i, "caches", "path"), "cache path %v", err)
		}
		for _, o := range out {
			if a, b := containerPath(o.Path), containerPath(c.Path); a == b || strings.HasPrefix(b, a+"/") || strings.HasPrefix(a, b+"/") {
				return nil, errAt(p.keys.line(i, "caches", "path"), "cache path %q overlaps the cache at line %d (%q); caches must not contain each other", c.Path, o.Line, o.Path)
			}
		}
		if v, ok = t["key"]; !ok {
			return nil, errAt(c.Line, "cache %q has no key; e.g. key = \"deps-{hash:go.sum}\"", c.Path)
		}
		if c.Key, perr = p.str(v, i, "caches", "key"); perr != nil {
			return nil, perr
		}
		if c.Parts, err = ParseCacheKey(c.Key); err != nil {
			return nil, errAt(p.keys.line(i, "caches", "key"), "cache key %v", err)
		}
		out = append(out, c)
	}
	return out, nil
}

// cleanCachePath checks a cache's path: absolute (not /, the workspace
// itself or a kernel file system), or relative to the workspace and inside
// it. It returns it cleaned.
func cleanCachePath(p string) (string, error) {
	switch {
	case strings.TrimSpace(p) == "":
		return "", fmt.Errorf("is empty")
	case forge.HasControl(p):
		return "", fmt.Errorf("%q contains control characters", clip(p))
	case strings.ContainsRune(p, '\\'):
		return "", fmt.Errorf("%q: use forward slashes", clip(p))
	}
	if !path.IsAbs(p) {
		clean, err := cleanWorkingDir(p)
		if err != nil {
			return "", err
		}
		if clean == "" {
			return "", fmt.Errorf("%q is the workspace itself; name a directory inside it", clip(p))
		}
		return clean, nil
	}
	clean := path.Clean(p)
	switch top := strings.Split(clean, "/")[1]; {
	case clean == "/":
		return "", fmt.Errorf("%q is the root of the container", clip(p))
	case clean == workspacePath:
		return "", fmt.Errorf("%q is the workspace itself; name a directory inside it", clip(p))
	case top == "proc" || top == "sys" || top == "dev":
		return "", fmt.Errorf("%q is inside /%s, which the kernel provides", clip(p), top)
	}
	return clean, nil
}

// containerPath is a cleaned cache path as steps see it.
func containerPath(p string) string {
	if path.IsAbs(p) {
		return p
	}
	return workspacePath + "/" + p
}
