package sandbox

import (
	"strings"
	"testing"
)

func TestCheckWorkspace(t *testing.T) {
	for _, ws := range []string{"", "a", "build-linux-2", strings.Repeat("a", 40)} {
		if err := CheckWorkspace(ws); err != nil {
			t.Errorf("CheckWorkspace(%q) = %v, want nil", ws, err)
		}
	}
	for _, ws := range []string{"-a", "a-", "A", "a_b", "a/b", strings.Repeat("a", 41)} {
		if err := CheckWorkspace(ws); err == nil {
			t.Errorf("CheckWorkspace(%q) = nil, want an error", ws)
		}
	}
}
