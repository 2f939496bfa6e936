package main

import (
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/kioskmon/kioskmon/slo/access"
)

const tokensUsage = `usage: kioskmon tokens COMMAND --server URL --token ADMIN_TOKEN
  add --name NAME --role viewer|engineer|manager|admin   prints the new token as the last line (shown once)
  list                                                    every token issued, revoked ones included
  revoke --name NAME`

func runTokens(args []string, stdout, stderr io.Writer) error {
	verb, fs, c, err := apiCommand("tokens", tokensUsage, args, stderr)
	if err != nil {
		return err
	}
	switch verb {
	case "add":
		name := fs.String("name", "", "the token's name: recorded as the actor of every change made with it")
		role := fs.String("role", "viewer", "the token's role: "+strings.Join(access.RoleNames, ", "))
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		var reply struct {
			Token string `json:"token"`
		}
		if err := c.call("POST", "/api/v1/tokens", map[string]string{"name": *name, "role": *role}, &reply); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "token %q (%s); it is shown once, keep it safe:\n%s\n", *name, *role, reply.Token)
		return nil
	case "list":
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		var reply struct {
			Tokens []access.Token `json:"tokens"`
		}
		if err := c.call("GET", "/api/v1/tokens", nil, &reply); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tROLE\tCREATED\tBY\tREVOKED")
		for _, t := range reply.Tokens {
			revoked := ""
			if !t.RevokedAt.IsZero() {
				revoked = t.RevokedAt.Local().Format("2006-01-02 15:04") + " by " + t.RevokedBy
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.Name, t.Role, t.CreatedAt.Local().Format("2006-01-02 15:04"), t.CreatedBy, revoked)
		}
		return tw.Flush()
	case "revoke":
		name := fs.String("name", "", "the token to revoke")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if err := c.call("DELETE", "/api/v1/tokens/"+url.PathEscape(*name), nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "token %q revoked\n", *name)
		return nil
	}
	fmt.Fprintln(stderr, tokensUsage)
	return fmt.Errorf("tokens: unknown command %q", verb)
}
