package source

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Auth holds the credentials for one repository. The keys of a Secret or a
// credentials directory are the same as Flux's: username, password,
// bearerToken, identity, identity.pub (ignored), known_hosts.
type Auth struct {
	Username    string
	Password    string
	BearerToken string
	// Identity is a PEM private key for ssh; KnownHosts the server keys it accepts.
	Identity   []byte
	Passphrase string
	KnownHosts []byte
}

// AuthFromData reads credentials from the keys of a Secret's data.
func AuthFromData(data map[string][]byte) *Auth {
	return &Auth{
		Username:    string(data["username"]),
		Password:    string(data["password"]),
		BearerToken: string(data["bearerToken"]),
		Identity:    data["identity"],
		Passphrase:  string(data["passphrase"]),
		KnownHosts:  data["known_hosts"],
	}
}

// AuthFromDir reads credentials from files named like a Secret's keys,
// as a mounted Secret lays them out.
func AuthFromDir(dir string) (*Auth, error) {
	data := map[string][]byte{}
	for _, k := range []string{"username", "password", "bearerToken", "identity", "passphrase", "known_hosts"} {
		b, err := os.ReadFile(filepath.Join(dir, k))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("credentials %s: %w", k, err)
		}
		data[k] = []byte(strings.TrimRight(string(b), "\n"))
		if k == "identity" || k == "known_hosts" {
			data[k] = b
		}
	}
	return AuthFromData(data), nil
}

// AuthFromEnv reads MESHCD_GIT_USERNAME, MESHCD_GIT_PASSWORD,
// MESHCD_GIT_BEARER_TOKEN, MESHCD_GIT_IDENTITY_FILE and
// MESHCD_GIT_KNOWN_HOSTS_FILE. It returns nil when none is set.
func AuthFromEnv() (*Auth, error) {
	a := &Auth{Username: os.Getenv("MESHCD_GIT_USERNAME"), Password: os.Getenv("MESHCD_GIT_PASSWORD"), BearerToken: os.Getenv("MESHCD_GIT_BEARER_TOKEN")}
	for env, dst := range map[string]*[]byte{"MESHCD_GIT_IDENTITY_FILE": &a.Identity, "MESHCD_GIT_KNOWN_HOSTS_FILE": &a.KnownHosts} {
		if p := os.Getenv(env); p != "" {
			b, err := os.ReadFile(p)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", env, err)
			}
			*dst = b
		}
	}
	if a.Username == "" && a.Password == "" && a.BearerToken == "" && a.Identity == nil && a.KnownHosts == nil {
		return nil, nil
	}
	return a, nil
}

// method turns the credentials into a go-git auth method for rawURL.
func (a *Auth) method(rawURL string) (transport.AuthMethod, error) {
	if a == nil {
		return nil, nil
	}
	ep, err := transport.NewEndpoint(rawURL)
	if err != nil {
		return nil, fmt.Errorf("repository URL %s: %w", SafeURL(rawURL), err)
	}
	switch ep.Protocol {
	case "http", "https":
		if a.BearerToken != "" {
			return &githttp.TokenAuth{Token: a.BearerToken}, nil
		}
		if a.Username != "" || a.Password != "" {
			user := a.Username
			if user == "" {
				user = "git" // hosts that take a token as password want some user name
			}
			return &githttp.BasicAuth{Username: user, Password: a.Password}, nil
		}
		return nil, nil
	case "ssh":
		if len(a.Identity) == 0 {
			return nil, fmt.Errorf("repository %s is ssh but no identity (private key) was given", SafeURL(rawURL))
		}
		if len(a.KnownHosts) == 0 {
			return nil, fmt.Errorf("repository %s is ssh but no known_hosts was given; meshcd never trusts an unknown host key", SafeURL(rawURL))
		}
		user := ep.User
		if user == "" {
			user = "git"
		}
		keys, err := gitssh.NewPublicKeys(user, a.Identity, a.Passphrase)
		if err != nil {
			return nil, fmt.Errorf("ssh identity for %s cannot be used: the key or its passphrase is wrong", SafeURL(rawURL))
		}
		cb, err := hostKeyCallback(a.KnownHosts)
		if err != nil {
			return nil, err
		}
		keys.HostKeyCallback = cb
		return keys, nil
	}
	return nil, nil
}

// hostKeyCallback checks host keys against known_hosts content.
func hostKeyCallback(known []byte) (ssh.HostKeyCallback, error) {
	f, err := os.CreateTemp("", "meshcd-known-hosts-*")
	if err != nil {
		return nil, fmt.Errorf("known_hosts: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(known); err != nil {
		f.Close()
		return nil, fmt.Errorf("known_hosts: %w", err)
	}
	f.Close()
	cb, err := knownhosts.New(f.Name())
	if err != nil {
		return nil, fmt.Errorf("known_hosts is malformed: %w", err)
	}
	return cb, nil
}

// secrets lists the strings that must never be printed.
func (a *Auth) secrets() []string {
	if a == nil {
		return nil
	}
	var out []string
	for _, s := range []string{a.Password, a.BearerToken, a.Passphrase, string(a.Identity)} {
		if len(s) >= 4 {
			out = append(out, s)
		}
	}
	return out
}

// SafeURL drops the user info (which may hold a token) from a URL. A URL
// whose user info does not parse as written, such as one with an
// unescaped "/" or "@" in its password, loses everything up to its last
// "@".
func SafeURL(rawURL string) string {
	u, err := parseURL(rawURL)
	if err != nil || u.User == nil {
		if i := strings.LastIndex(rawURL, "@"); i > 0 && strings.Contains(rawURL[:i], "://") {
			return rawURL[:strings.Index(rawURL, "://")+3] + "***@" + rawURL[i+1:]
		}
		return rawURL
	}
	u.User = nil
	return u.String()
}

// parseURL parses rawURL and fails when its user info, up to the last
// "@", is not what the parse found: a password with an unescaped "/", "?",
// "#" or "@" ends up in the host, port or path, from where an error or a
// log could show a piece of it.
func parseURL(rawURL string) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, errors.New("does not parse")
	}
	raw, ok := rawUserInfo(rawURL)
	if !ok {
		return u, nil
	}
	written, err := url.PathUnescape(raw)
	if err != nil {
		return nil, errors.New("user info does not unescape")
	}
	switch {
	case u.User == nil && strings.Contains(raw, ":"):
		return nil, errors.New("a password is not in the user info")
	case u.User != nil:
		parsed := u.User.Username()
		if p, ok := u.User.Password(); ok {
			parsed += ":" + p
		}
		if parsed != written {
			return nil, errors.New("the user info is not what was written")
		}
	}
	return u, nil
}

// checkURL refuses a URL that has a scheme but does not parse as written,
// without quoting the parser: its message may hold a piece of a password
// that was not escaped. scp-like addresses (git@host:path) have no scheme.
func checkURL(rawURL string) error {
	if !strings.Contains(rawURL, "://") {
		return nil
	}
	if _, err := parseURL(rawURL); err != nil {
		return fmt.Errorf("repository URL %s is not a valid URL; a user name or password in it must be URL-escaped (%%2F for /, %%40 for @, %%3A for :)", SafeURL(rawURL))
	}
	return nil
}

// urlSecrets lists the password of a URL's user info, as written,
// unescaped and escaped for a path and a query.
func urlSecrets(rawURL string) []string {
	raw, ok := rawUserInfo(rawURL)
	if !ok {
		return nil
	}
	_, password, ok := strings.Cut(raw, ":")
	if !ok {
		return nil
	}
	out := []string{password}
	if p, err := url.PathUnescape(password); err == nil {
		out = append(out, p, url.PathEscape(p), url.QueryEscape(p))
	}
	return out
}

// rawUserInfo is a URL's user info as written: what lies between its
// "://" and its last "@".
func rawUserInfo(rawURL string) (string, bool) {
	scheme, at := strings.Index(rawURL, "://"), strings.LastIndex(rawURL, "@")
	if scheme < 0 || at < scheme {
		return "", false
	}
	return rawURL[scheme+3 : at], true
}
