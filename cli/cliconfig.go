package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kod-forge/kod/client"
	"github.com/kod-forge/kod/config"
	"github.com/kod-forge/kod/forge"
)

// DefaultServerURL is where the client looks for a server when nothing
// says otherwise.
const DefaultServerURL = "http://localhost:3000"

// Client config file keys. The file is shared with `kod serve`, which reads
// its own camelCase keys and ignores these (and the client ignores the
// server's).
const (
	configKeyServer = "serverUrl"
	configKeyToken  = "token"
)

// clientSettings are the resolved server URL and token, with where each
// came from ("default", "config", "env" or "flag") for `kod doctor`.
type clientSettings struct {
	Server, ServerFrom string
	Token, TokenFrom   string
	ConfigPath         string
}

// configPath is the client (and server) config file: KOD_CONFIG, else
// ~/.kod/config.json (KOD_HOME moves ~/.kod).
func (a *app) configPath() string {
	if p := a.getenv("KOD_CONFIG"); p != "" {
		return p
	}
	return filepath.Join(config.Home(), "config.json")
}

// settings resolves, in rising precedence: the default server URL, the
// config file, KOD_SERVER_URL / KOD_API_TOKEN, then -s/--server and
// -t/--token.
func (a *app) settings() (clientSettings, error) {
	s := clientSettings{Server: DefaultServerURL, ServerFrom: "default", ConfigPath: a.configPath()}
	file, err := readConfigFile(s.ConfigPath)
	if err != nil {
		return s, err
	}
	set := func(dst, from *string, v, source string) {
		if v != "" {
			*dst, *from = v, source
		}
	}
	set(&s.Server, &s.ServerFrom, stringKey(file, configKeyServer), "config")
	set(&s.Token, &s.TokenFrom, stringKey(file, configKeyToken), "config")
	set(&s.Server, &s.ServerFrom, a.getenv("KOD_SERVER_URL"), "env")
	set(&s.Token, &s.TokenFrom, a.getenv("KOD_API_TOKEN"), "env")
	set(&s.Server, &s.ServerFrom, a.flagServer, "flag")
	set(&s.Token, &s.TokenFrom, a.flagToken, "flag")
	if _, err := client.ParseServerURL(s.Server); err != nil {
		return s, fmt.Errorf("%w (from %s)", err, s.ServerFrom)
	}
	return s, nil
}

// readConfigFile returns the keys of the JSON config file at path; a
// missing file is empty.
func readConfigFile(path string) (map[string]json.RawMessage, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]json.RawMessage{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading config file: %w", err)
	}
	m := map[string]json.RawMessage{}
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("config file %s is not a JSON object: %w", path, err)
	}
	return m, nil
}

func stringKey(m map[string]json.RawMessage, key string) string {
	var s string
	if v, ok := m[key]; ok && json.Unmarshal(v, &s) == nil {
		return s
	}
	return ""
}

// writeClientConfig sets serverUrl and token in the config file at path,
// keeping every other key (the server's settings), and leaves the file with
// mode 0600 (it holds a token). The write is atomic.
func writeClientConfig(path, server, token string) error {
	return writeConfigKeys(path, map[string]any{configKeyServer: server, configKeyToken: token})
}

// configKeyCloneCredentials holds the tokens given to `kod clone -c`, by
// id: {"<id>": {"origin": "https://host:port", "token": "kod_..."}}; the
// clone's credential helper names its id (kod git-credential --clone ID).
const configKeyCloneCredentials = "cloneCredentials"

// cloneCredential is a token kept for the clones made with it.
type cloneCredential struct {
	Origin string `json:"origin"`
	Token  string `json:"token"`
}

// readCloneCredentials returns the clone credentials of the config file.
func readCloneCredentials(path string) (map[string]cloneCredential, error) {
	m, err := readConfigFile(path)
	if err != nil {
		return nil, err
	}
	creds := map[string]cloneCredential{}
	if raw, ok := m[configKeyCloneCredentials]; ok {
		if err := json.Unmarshal(raw, &creds); err != nil {
			return nil, fmt.Errorf("config file %s: %s: %w", path, configKeyCloneCredentials, err)
		}
	}
	return creds, nil
}

// addCloneCredential keeps token for origin in the config file (mode 0600)
// and returns its id.
func addCloneCredential(path, origin, token string) (string, error) {
	creds, err := readCloneCredentials(path)
	if err != nil {
		return "", err
	}
	for id, c := range creds { // the same token for the same server: one entry
		if c.Origin == origin && c.Token == token {
			return id, nil
		}
	}
	id := forge.NewID()
	creds[id] = cloneCredential{Origin: origin, Token: token}
	return id, writeConfigKeys(path, map[string]any{configKeyCloneCredentials: creds})
}

// writeConfigKeys sets keys in the config file at path, keeping every other
// key, with mode 0600; the write is atomic.
func writeConfigKeys(path string, keys map[string]any) error {
	m, err := readConfigFile(path)
	if err != nil {
		return err
	}
	for k, v := range keys {
		data, err := json.Marshal(v)
		if err != nil {
			return err
		}
		m[k] = data
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", filepath.Dir(path), err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".config-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
