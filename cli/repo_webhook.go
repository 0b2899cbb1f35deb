package cli

import (
	"context"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kod-forge/kod/client"
)

func newWebhookCmd(a *app, repo string) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "webhook",
		Aliases: []string{"webhooks", "hook"},
		Short:   "Manage webhooks and their deliveries",
	}
	cmd.AddCommand(newWebhookListCmd(a, repo), newWebhookAddCmd(a, repo), newWebhookRemoveCmd(a, repo),
		newDeliveriesCmd(a, repo), newRetryCmd(a, repo))
	return cmd
}

func newWebhookListCmd(a *app, repo string) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the webhooks (their secrets are never shown)",
		Args:    cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, c *client.Client, u *ui, _ []string) error {
			hooks, err := c.ListWebhooks(ctx, repo)
			if err != nil || u.json {
				return jsonOr(u, hooks, err)
			}
			if len(hooks) == 0 {
				u.notef("%s has no webhooks: add one with `kod repo %s webhook add URL`.\n", repo, repo)
				return nil
			}
			var rows [][]cell
			for _, h := range hooks {
				rows = append(rows, plain(h.ID, h.URL, strings.Join(h.Events, ","), ago(u.now, h.CreatedAt)))
			}
			u.table([]string{"ID", "URL", "EVENTS", "CREATED"}, rows)
			return nil
		}),
	}
}

func newWebhookAddCmd(a *app, repo string) *cobra.Command {
	var events []string
	var secret string
	cmd := &cobra.Command{
		Use:   "add URL",
		Short: "Add a webhook for push and/or workflow events",
		Long: `Add a webhook. Deliveries are signed with --secret (X-Kod-Signature-256:
sha256=HMAC) when one is given, and retried after 30 s, 5 min and 30 min.`,
		Example: "  kod repo app webhook add https://ci.example.com/hook --events push,workflow --secret s3cret",
		Args:    exactArgs("URL"),
		RunE: a.run(func(ctx context.Context, c *client.Client, u *ui, args []string) error {
			h, err := c.CreateWebhook(ctx, repo, client.WebhookRequest{URL: args[0], Events: events, Secret: secret})
			if err != nil || u.json {
				return jsonOr(u, h, err)
			}
			u.printf("Added webhook %s for %s (%s)\n", h.ID, h.URL, strings.Join(h.Events, ","))
			return nil
		}),
	}
	cmd.Flags().StringSliceVar(&events, "events", nil, "events to send: push, workflow (default push)")
	cmd.Flags().StringVar(&secret, "secret", "", "secret that signs each delivery")
	return cmd
}

func newWebhookRemoveCmd(a *app, repo string) *cobra.Command {
	return &cobra.Command{
		Use:     "remove ID",
		Aliases: []string{"rm", "delete"},
		Short:   "Remove a webhook",
		Args:    exactArgs("ID"),
		RunE: a.run(func(ctx context.Context, c *client.Client, u *ui, args []string) error {
			return done(u, c.DeleteWebhook(ctx, repo, args[0]), "Removed webhook %s\n", args[0])
		}),
	}
}

func newDeliveriesCmd(a *app, repo string) *cobra.Command {
	return &cobra.Command{
		Use:   "deliveries ID",
		Short: "List the deliveries of a webhook, newest first",
		Args:  exactArgs("ID"),
		RunE: a.run(func(ctx context.Context, c *client.Client, u *ui, args []string) error {
			ds, err := c.Deliveries(ctx, repo, args[0])
			if err != nil || u.json {
				return jsonOr(u, ds, err)
			}
			if len(ds) == 0 {
				u.notef("No deliveries yet.\n")
				return nil
			}
			var rows [][]cell
			for _, d := range ds {
				resp := "-"
				if d.ResponseStatus != 0 {
					resp = strconv.Itoa(d.ResponseStatus)
				}
				next := "-"
				if d.Status == "pending" && d.NextAttemptAt != 0 {
					next = ago(u.now, d.NextAttemptAt)
				}
				rows = append(rows, []cell{
					{text: d.ID}, {text: d.Event}, {text: d.Status, color: statusColor(d.Status)},
					{text: strconv.Itoa(d.Attempts) + "/" + strconv.Itoa(d.MaxAttempts)}, {text: resp},
					{text: ago(u.now, d.CreatedAt)}, {text: next}, {text: orDash(d.Error)},
				})
			}
			u.table([]string{"ID", "EVENT", "STATUS", "ATTEMPTS", "RESPONSE", "CREATED", "NEXT TRY", "ERROR"}, rows)
			return nil
		}),
	}
}

func newRetryCmd(a *app, repo string) *cobra.Command {
	return &cobra.Command{
		Use:   "retry ID DELIVERY",
		Short: "Send a delivery again now",
		Args:  exactArgs("ID", "DELIVERY"),
		RunE: a.run(func(ctx context.Context, c *client.Client, u *ui, args []string) error {
			return done(u, c.RetryDelivery(ctx, repo, args[0], args[1]), "Retrying delivery %s\n", args[1])
		}),
	}
}
