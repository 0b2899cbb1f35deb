package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestWebhookSettings(t *testing.T) {
	got, err := ParseRetrySchedule(" 1s, 2 ,1m30s")
	if err != nil || !slices.Equal(got, []time.Duration{time.Second, 2 * time.Second, 90 * time.Second}) {
		t.Errorf("schedule = %v, %v", got, err)
	}
	if got, err := ParseRetrySchedule(""); got != nil || err != nil {
		t.Errorf("empty schedule = %v, %v", got, err)
	}
	env := map[string]string{"KOD_WEBHOOK_ALLOWED_HOSTS": "loopback,bad host", "KOD_WEBHOOK_RETRY_SCHEDULE": "1s,-2s"}
	cfg := Default(t.TempDir())
	err = Load(&cfg, "", nil, func(k string) string { return env[k] })
	if err == nil || !strings.Contains(err.Error(), "KOD_WEBHOOK_ALLOWED_HOSTS") || !strings.Contains(err.Error(), "KOD_WEBHOOK_RETRY_SCHEDULE") {
		t.Errorf("bad webhook settings: %v", err)
	}
	env = map[string]string{"KOD_WEBHOOK_ALLOWED_HOSTS": "loopback, 10.0.0.0/8, hooks.example.com"}
	cfg = Default(t.TempDir())
	if err := Load(&cfg, "", nil, func(k string) string { return env[k] }); err != nil || cfg.WebhookAllowedHosts == "" {
		t.Errorf("good webhook settings: %v", err)
	}
}
