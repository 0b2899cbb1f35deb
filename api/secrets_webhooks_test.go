package api_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/kod-forge/kod/api"
	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/netpolicy"
	"github.com/kod-forge/kod/repos"
)

func cheapBox(t *testing.T) *forge.SecretBox {
	kdf := forge.NewSecretKDF()
	kdf.N = 1 << 10
	box, err := forge.NewSecretBox("test key", kdf)
	if err != nil {
		t.Fatal(err)
	}
	return box
}

func TestSecretsRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.req("POST", "/repos", bearer(admin), `{"name":"app"}`)
	const value = "very-secret-value-123"

	// No key configured: Kod's 500 (after the repository checks every
	// {name} route makes first).
	code, body, _ := e.req("PUT", "/repos/app/secrets/TOKEN", bearer(admin), `{"value":"`+value+`"}`)
	if code != 500 || errorOf(body) != "No encryption key configured. Set KOD_ENCRYPTION_KEY or use --encryption-key." {
		t.Errorf("PUT without a key: %d %s", code, body)
	}
	e.api.Secrets = cheapBox(t)

	nameMsg := "Secret name must be a valid environment variable name (letters, digits, underscores)"
	cases := []struct {
		path, body string
		code       int
		msg        string
	}{
		{"/repos/missing/secrets/TOKEN", `{"value":"x"}`, 404, "Repository not found"},
		{"/repos/app/secrets/TOKEN", `{}`, 400, "Secret value is required"},
		{"/repos/app/secrets/TOKEN", `{"value":""}`, 400, "Secret value is required"},
		{"/repos/app/secrets/1BAD", `{}`, 400, "Secret value is required"}, // Kod checks the value first
		{"/repos/app/secrets/1BAD", `{"value":"x"}`, 400, nameMsg},
		{"/repos/app/secrets/A-B", `{"value":"x"}`, 400, nameMsg},
		{"/repos/app/secrets/" + strings.Repeat("A", 256), `{"value":"x"}`, 400, nameMsg},
		{"/repos/app/secrets/TOKEN", `{"value":"` + strings.Repeat("v", 64<<10+1) + `"}`, 400, "Secret value must be at most 65536 bytes"},
		{"/repos/app/secrets/TOKEN", `{"value":"a\u0000b"}`, 400, "Secret value must not contain NUL bytes"},
		{"/repos/app/secrets/TOKEN", `{"value":5}`, 400, `Invalid JSON body: field "value" must be a string`},
	}
	for _, c := range cases {
		code, body, _ := e.req("PUT", c.path, bearer(admin), c.body)
		if code != c.code || errorOf(body) != c.msg {
			t.Errorf("PUT %.60s %.40s: %d %.200s, want %d %q", c.path, c.body, code, body, c.code, c.msg)
		}
	}
	if n, _ := e.store.CountSecrets(context.Background()); n != 0 {
		t.Fatalf("bad requests stored %d secrets", n)
	}

	code, body, _ = e.req("PUT", "/repos/app/secrets/DEPLOY_TOKEN", bearer(admin), `{"value":"`+value+`"}`)
	if code != 200 || strings.TrimSpace(body) != `{"message":"Secret saved","name":"DEPLOY_TOKEN","repoName":"app"}` {
		t.Fatalf("PUT: %d %s", code, body)
	}
	big := strings.Repeat("b", 64<<10)
	if code, body, _ := e.req("PUT", "/repos/app/secrets/BIG", bearer(admin), `{"value":"`+big+`"}`); code != 200 {
		t.Errorf("a 64 KiB value: %d %s", code, body)
	}
	var first []map[string]any
	_, body, _ = e.req("GET", "/repos/app/secrets", bearer(admin), "")
	json.Unmarshal([]byte(body), &first)
	if len(first) != 2 || first[0]["name"] != "BIG" || first[1]["name"] != "DEPLOY_TOKEN" || first[1]["repoName"] != "app" || len(first[1]) != 4 {
		t.Fatalf("list: %s", body)
	}
	if strings.Contains(body, value) || strings.Contains(body, "sealed") {
		t.Fatalf("list shows a value: %s", body)
	}
	e.req("PUT", "/repos/app/secrets/DEPLOY_TOKEN", bearer(admin), `{"value":"rotated-value-456"}`)
	var second []map[string]any
	_, body, _ = e.req("GET", "/repos/app/secrets", bearer(admin), "")
	json.Unmarshal([]byte(body), &second)
	if second[1]["createdAt"] != first[1]["createdAt"] || second[1]["updatedAt"].(float64) < first[1]["updatedAt"].(float64) {
		t.Errorf("update did not keep createdAt: %v then %v", first[1], second[1])
	}
	got, err := forge.RepoSecrets(context.Background(), e.store, e.api.Secrets, "app")
	if err != nil || got[1].Value != "rotated-value-456" {
		t.Errorf("stored value: %v", err)
	}

	// Permissions: read and write are separate; a username-linked token
	// that is no collaborator does not see the repository.
	reader := e.token([]forge.Permission{forge.PermSecretsRead}, "")
	if code, _, _ := e.req("GET", "/repos/app/secrets", bearer(reader), ""); code != 200 {
		t.Errorf("secrets:read list: %d", code)
	}
	if code, body, _ := e.req("PUT", "/repos/app/secrets/X", bearer(reader), `{"value":"v"}`); code != 403 || errorOf(body) != "Permission denied" {
		t.Errorf("PUT with secrets:read only: %d %s", code, body)
	}
	writer := e.token([]forge.Permission{forge.PermSecretsWrite}, "")
	if code, body, _ := e.req("GET", "/repos/app/secrets", bearer(writer), ""); code != 403 || errorOf(body) != "Permission denied" {
		t.Errorf("GET with secrets:write only: %d %s", code, body)
	}
	stranger := e.token([]forge.Permission{forge.PermSecretsRead, forge.PermSecretsWrite}, "mallory")
	// (404 or 403: the access refusal is forge.Authorize's to word.)
	if code, body, _ := e.req("GET", "/repos/app/secrets", bearer(stranger), ""); (code != 404 && code != 403) || strings.Contains(body, "DEPLOY_TOKEN") {
		t.Errorf("non-collaborator: %d %s", code, body)
	}

	for range 2 { // deleting twice is fine (Kod)
		if code, _, _ := e.req("DELETE", "/repos/app/secrets/DEPLOY_TOKEN", bearer(writer), ""); code != 204 {
			t.Errorf("delete: %d", code)
		}
	}
	if code, body, _ := e.req("DELETE", "/repos/missing/secrets/X", bearer(admin), ""); code != 404 || errorOf(body) != "Repository not found" {
		t.Errorf("delete in a missing repository: %d %s", code, body)
	}
	if _, body, _ := e.req("GET", "/repos/app/secrets", bearer(admin), ""); strings.Contains(body, "DEPLOY_TOKEN") {
		t.Errorf("deleted secret still listed: %s", body)
	}
}

// stubRetrier answers retries with the delivery marked sent.
type stubRetrier struct{ store forge.DeliveryStore }

func (s stubRetrier) Retry(ctx context.Context, id string) (*forge.Delivery, error) {
	return s.store.UpdateDelivery(ctx, id, func(d *forge.Delivery) error {
		d.Attempts++
		d.Status, d.ResponseStatus = forge.DeliverySuccess, 200
		return nil
	})
}

func TestWebhookRoutes(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, func(d *api.Deps, rc *repos.Config) { d.Webhooks = stubRetrier{d.Store} })
	ctx := context.Background()
	e.req("POST", "/repos", bearer(admin), `{"name":"app"}`)
	e.req("POST", "/repos", bearer(admin), `{"name":"other"}`)

	bad := []struct{ body, msg string }{
		{`{}`, "Webhook URL is required"},
		{`{"url":""}`, "Webhook URL is required"},
		{`{"url":"not a url"}`, "Webhook URL is invalid"},
		{`{"url":"http://"}`, "Webhook URL is invalid"},
		{`{"url":"http://exa mple.com/"}`, "Webhook URL is invalid"},
		{`{"url":"ftp://example.com/hook"}`, "Webhook URL must use http or https"},
		{`{"url":"https://example.com/hook","events":[]}`, "Invalid webhook events"},
		{`{"url":"https://example.com/hook","events":["push","deploy"]}`, "Invalid webhook events"},
		{`{"url":"https://example.com/hook","secret":"` + strings.Repeat("s", 1025) + `"}`, "Webhook secret must be at most 1024 bytes"},
	}
	for _, c := range bad {
		code, body, _ := e.req("POST", "/repos/app/webhooks", bearer(admin), c.body)
		if code != 400 || errorOf(body) != c.msg {
			t.Errorf("%.60s: %d %s, want 400 %q", c.body, code, body, c.msg)
		}
	}
	code, body, _ := e.req("POST", "/repos/app/webhooks", bearer(admin), `{"url":"https://example.com/hook","secret":"signing-secret"}`)
	var hook map[string]any
	json.Unmarshal([]byte(body), &hook)
	if code != 201 || hook["repoName"] != "app" || hook["url"] != "https://example.com/hook" || len(hook["events"].([]any)) != 1 || hook["events"].([]any)[0] != "push" {
		t.Fatalf("create: %d %s", code, body)
	}
	if strings.Contains(body, "signing-secret") || strings.Contains(body, `"secret"`) {
		t.Errorf("create returns the secret: %s", body)
	}
	id := hook["id"].(string)
	if _, body, _ := e.req("GET", "/repos/app/webhooks", bearer(admin), ""); !strings.Contains(body, id) || strings.Contains(body, "signing-secret") {
		t.Errorf("list: %s", body)
	}

	// Owner or admin only; permission first.
	writer := e.token([]forge.Permission{forge.PermWebhookRead, forge.PermWebhookWrite}, "")
	for _, req := range [][2]string{{"GET", "/repos/app/webhooks"}, {"POST", "/repos/app/webhooks"}, {"DELETE", "/repos/app/webhooks/" + id},
		{"GET", "/repos/app/webhooks/" + id + "/deliveries"}, {"POST", "/repos/app/webhooks/" + id + "/deliveries/x/retry"}} {
		code, body, _ := e.req(req[0], req[1], bearer(writer), `{"url":"https://example.com/x"}`)
		if code != 403 || errorOf(body) != "Only the repository owner can manage webhooks" {
			t.Errorf("%s %s by a non-owner: %d %s", req[0], req[1], code, body)
		}
	}
	reader := e.token([]forge.Permission{forge.PermWebhookRead}, "")
	if code, body, _ := e.req("POST", "/repos/missing/webhooks", bearer(reader), `{}`); code != 403 || errorOf(body) != "Permission denied" {
		t.Errorf("create without webhook:write: %d %s", code, body)
	}

	// Deliveries: scoped to the webhook and repository.
	d := &forge.Delivery{ID: forge.NewID(), WebhookID: id, RepoName: "app", Event: forge.EventPush, URL: "https://example.com/hook",
		Status: forge.DeliveryFailed, Attempts: 4, MaxAttempts: 4, CreatedAt: 1, Error: "HTTP 500", ResponseStatus: 500, Payload: []byte(`{"event":"push"}`)}
	if err := e.store.CreateDeliveries(ctx, []*forge.Delivery{d}); err != nil {
		t.Fatal(err)
	}
	code, body, _ = e.req("GET", "/repos/app/webhooks/"+id+"/deliveries", bearer(admin), "")
	var ds []map[string]any
	json.Unmarshal([]byte(body), &ds)
	if code != 200 || len(ds) != 1 || ds[0]["status"] != "failed" || ds[0]["maxAttempts"] != 4.0 || ds[0]["responseStatus"] != 500.0 || ds[0]["leaseUntil"] != nil {
		t.Errorf("deliveries: %d %s", code, body)
	}
	for _, path := range []string{"/repos/app/webhooks/nope/deliveries", "/repos/other/webhooks/" + id + "/deliveries"} {
		if code, body, _ := e.req("GET", path, bearer(admin), ""); code != 404 || errorOf(body) != "Webhook not found" {
			t.Errorf("GET %s: %d %s", path, code, body)
		}
	}
	if code, body, _ := e.req("POST", "/repos/app/webhooks/"+id+"/deliveries/nope/retry", bearer(admin), ""); code != 404 || errorOf(body) != "Webhook delivery not found" {
		t.Errorf("retry of a missing delivery: %d %s", code, body)
	}
	code, body, _ = e.req("POST", "/repos/app/webhooks/"+id+"/deliveries/"+d.ID+"/retry", bearer(admin), "")
	if code != 202 || !strings.Contains(body, `"status":"success"`) || !strings.Contains(body, `"attempts":5`) {
		t.Errorf("retry: %d %s", code, body)
	}

	// Delete: another repository's webhook is untouched; then gone.
	if code, _, _ := e.req("DELETE", "/repos/other/webhooks/"+id, bearer(admin), ""); code != 204 {
		t.Errorf("delete through another repository: %d", code)
	}
	if _, err := e.store.GetWebhook(ctx, id); err != nil {
		t.Fatalf("a webhook was deleted through another repository: %v", err)
	}
	if code, _, _ := e.req("DELETE", "/repos/app/webhooks/"+id, bearer(admin), ""); code != 204 {
		t.Errorf("delete: %d", code)
	}
	if code, _, _ := e.req("GET", "/repos/app/webhooks/"+id+"/deliveries", bearer(admin), ""); code != 404 {
		t.Errorf("deliveries of a deleted webhook: %d", code)
	}
	if _, err := e.store.GetDelivery(ctx, d.ID); err == nil {
		t.Error("deliveries outlive their webhook")
	}
}

// TestSecretsAndWebhooksFollowRename: after PATCH /repos/:name the secrets
// (bound to the repository's id, untouched) still decrypt, and webhooks
// with their deliveries answer under the new name.
func TestSecretsAndWebhooksFollowRename(t *testing.T) {
	t.Parallel()
	box := cheapBox(t)
	e := newEnvWith(t, func(d *api.Deps, rc *repos.Config) { d.Secrets = box })
	e.must("POST", "/repos", bearer(admin), `{"name":"old"}`, 201)
	e.must("PUT", "/repos/old/secrets/TOKEN", bearer(admin), `{"value":"moving-value"}`, 200)
	var hook struct{ ID string }
	json.Unmarshal([]byte(e.must("POST", "/repos/old/webhooks", bearer(admin), `{"url":"https://example.com/h"}`, 201)), &hook)
	e.must("PATCH", "/repos/old", bearer(admin), `{"name":"new"}`, 200)

	got, err := forge.RepoSecrets(context.Background(), e.store, box, "new")
	if err != nil || len(got) != 1 || got[0].Value != "moving-value" {
		t.Fatalf("secrets after rename: %+v %v", got, err)
	}
	if body := e.must("GET", "/repos/new/secrets", bearer(admin), "", 200); !strings.Contains(body, `"repoName":"new"`) {
		t.Errorf("secret list after rename: %s", body)
	}
	if body := e.must("GET", "/repos/new/webhooks", bearer(admin), "", 200); !strings.Contains(body, hook.ID) {
		t.Errorf("webhooks after rename: %s", body)
	}
	e.must("GET", "/repos/new/webhooks/"+hook.ID+"/deliveries", bearer(admin), "", 200)
	e.must("DELETE", "/repos/new", bearer(admin), "", 204)
	if n, _ := e.store.CountSecrets(context.Background()); n != 0 {
		t.Errorf("%d secrets outlive their repository", n)
	}
	if _, err := e.store.GetWebhook(context.Background(), hook.ID); err == nil {
		t.Error("a webhook outlives its repository")
	}
}

// TestWebhookURLRefusedByHostPolicyAtCreation: a webhook URL whose host the
// host policy refuses (loopback, private, link-local metadata addresses,
// also spelled as a name) is refused at creation with the policy's reason
// and nothing is stored, instead of failing at every delivery; an allowed
// host is accepted.
func TestWebhookURLRefusedByHostPolicyAtCreation(t *testing.T) {
	t.Parallel()
	e := newEnv(t) // the default policy: external hosts only
	e.req("POST", "/repos", bearer(admin), `{"name":"app"}`)
	for url, want := range map[string]string{
		"http://127.0.0.1:8080/hook":       "Webhook URL is not allowed: 127.0.0.1 is a loopback address that KOD_WEBHOOK_ALLOWED_HOSTS does not allow",
		"http://10.1.2.3/hook":             "Webhook URL is not allowed: 10.1.2.3 is a private address that KOD_WEBHOOK_ALLOWED_HOSTS does not allow",
		"http://169.254.169.254/latest":    "Webhook URL is not allowed: 169.254.169.254 is a link-local address that KOD_WEBHOOK_ALLOWED_HOSTS does not allow",
		"http://[::1]:9/hook":              "Webhook URL is not allowed: ::1 is a loopback address that KOD_WEBHOOK_ALLOWED_HOSTS does not allow",
		"http://localhost:3000/api/x":      `Webhook URL is not allowed: host "localhost" resolves to`,
		"https://user@127.0.0.1:443/hook?": "Webhook URL is not allowed: 127.0.0.1 is a loopback address",
	} {
		code, body, _ := e.req("POST", "/repos/app/webhooks", bearer(admin), `{"url":`+jsonString(url)+`}`)
		if code != 400 || !strings.HasPrefix(errorOf(body), want) {
			t.Errorf("%s: %d %s, want 400 %q", url, code, body, want)
		}
	}
	if _, body, _ := e.req("GET", "/repos/app/webhooks", bearer(admin), ""); body != "[]\n" && body != "[]" {
		t.Errorf("refused webhooks were stored: %s", body)
	}
	allowed := newEnvWith(t, func(d *api.Deps, _ *repos.Config) { d.HostPolicy, _ = netpolicy.Parse("loopback") })
	allowed.req("POST", "/repos", bearer(admin), `{"name":"app"}`)
	allowed.must("POST", "/repos/app/webhooks", bearer(admin), `{"url":"http://127.0.0.1:8080/hook"}`, 201)
}
