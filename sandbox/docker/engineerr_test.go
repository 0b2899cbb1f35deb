package docker

import (
	"errors"
	"strings"
	"testing"

	"github.com/docker/docker/client"

	"github.com/kod-forge/kod/sandbox"
)

// An engine that cannot be reached is ErrUnavailable with the network
// error, not the SDK's request URL ("Put http://%2Fvar%2Frun%2Fdocker.sock/...").
func TestEngineErrHidesTheRequestURL(t *testing.T) {
	cli, err := client.NewClientWithOpts(client.WithHost("unix://"+t.TempDir()+"/none.sock"), client.WithVersion("1.41"))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	_, err = cli.Ping(t.Context())
	if !client.IsErrConnectionFailed(err) {
		t.Fatalf("ping of a missing socket: %v", err)
	}
	got := engineErr("ping", err)
	if !errors.Is(got, sandbox.ErrUnavailable) || !client.IsErrConnectionFailed(got) {
		t.Errorf("%v: not marked unavailable", got)
	}
	msg := got.Error()
	if strings.Contains(msg, "http://") || strings.Contains(msg, "%2F") || !strings.Contains(msg, "none.sock") {
		t.Errorf("message %q: want the dial error, not the request URL", msg)
	}
}
