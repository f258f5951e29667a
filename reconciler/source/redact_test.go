package source

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
)

// A password pasted into the URL without escaping made url.Parse fail with
// `invalid port ":<password up to its first slash>" after host`, and that
// message reached the error, the status and the events.
func TestFetch_AnUnescapedPasswordInTheURLIsNeverQuoted(t *testing.T) {
	const password = "tok3n-value+/=@:rest"
	for _, raw := range []string{
		"http://meshcd:" + password + "@127.0.0.1:1/spec.git",
		"https://meshcd:" + password + "@git.example.com/org/spec.git",
	} {
		for _, auth := range []*Auth{nil, {Username: "meshcd", Password: "other-secret"}} {
			_, _, err := New(Options{URL: raw, Auth: auth, WorkDir: t.TempDir()}).Fetch(context.Background())
			if err == nil {
				t.Fatalf("%s: an unparseable URL fetched", raw)
			}
			for _, piece := range []string{"tok3n", "value", "rest", "other-secret"} {
				if strings.Contains(err.Error(), piece) {
					t.Fatalf("the error shows %q of the password: %v", piece, err)
				}
			}
			if !strings.Contains(err.Error(), "must be URL-escaped") {
				t.Fatalf("the error says what to do: %v", err)
			}
		}
	}
}

func TestSafeURL_DropsEverythingUpToTheLastAt(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:p@ss/w@rd@git.example.com/a.git": "https://***@git.example.com/a.git",
		"http://meshcd:tok+/=@:@127.0.0.1:8080/s.git":  "http://***@127.0.0.1:8080/s.git",
		"https://user:123/x@git.example.com/a.git":     "https://***@git.example.com/a.git", // parses, with the password as a port and path
	} {
		if got := SafeURL(in); got != want {
			t.Errorf("SafeURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRedact_RemovesTheURLsPasswordAsWrittenAndUnescaped(t *testing.T) {
	password := "s3cr3t/with@signs"
	raw := "https://" + url.UserPassword("meshcd", password).String() + "@git.example.com/a.git"
	s := New(Options{URL: raw})
	err := s.redact(errors.New("server said: bad password " + password + " (" + url.PathEscape(password) + ")"))
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("the password is shown: %v", err)
	}
}
