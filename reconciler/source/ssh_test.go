package source

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// sshKey is a fresh ed25519 key as a signer and as PEM.
func sshKey(t *testing.T) (ssh.Signer, []byte) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	return signer, pem.EncodeToMemory(block)
}

// gitSSHServer serves the repositories under root over ssh on loopback,
// running git-upload-pack for a client holding allowed's key. It returns
// the address.
func gitSSHServer(t *testing.T, root string, host ssh.Signer, allowed ssh.PublicKey) string {
	t.Helper()
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
		if bytes.Equal(key.Marshal(), allowed.Marshal()) {
			return nil, nil
		}
		return nil, errors.New("unknown key")
	}}
	cfg.AddHostKey(host)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go serveSSH(conn, cfg, root)
		}
	}()
	return l.Addr().String()
}

func serveSSH(conn net.Conn, cfg *ssh.ServerConfig, root string) {
	_, chans, reqs, err := ssh.NewServerConn(conn, cfg)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, requests, err := nc.Accept()
		if err != nil {
			return
		}
		go func() {
			defer ch.Close()
			for req := range requests {
				if req.Type != "exec" || len(req.Payload) < 4 {
					_ = req.Reply(false, nil)
					continue
				}
				line := string(req.Payload[4:])
				verb, path, ok := strings.Cut(line, " ")
				if !ok || verb != "git-upload-pack" {
					_ = req.Reply(false, nil)
					continue
				}
				_ = req.Reply(true, nil)
				cmd := exec.Command("git-upload-pack", filepath.Join(root, filepath.Base(strings.Trim(path, "'"))))
				cmd.Stdin, cmd.Stdout, cmd.Stderr = ch, ch, ch.Stderr()
				status := uint32(0)
				if err := cmd.Run(); err != nil {
					status = 1
				}
				_, _ = ch.SendRequest("exit-status", false, binary.BigEndian.AppendUint32(nil, status))
				return
			}
		}()
	}
}

func TestFetch_SSHWithAKeyAndKnownHosts(t *testing.T) {
	requireGit(t)
	r := newRepo(t)
	head := r.commit(map[string]string{"ns.yaml": "a: 1\n"}, nil)
	host, _ := sshKey(t)
	client, identity := sshKey(t)
	addr := gitSSHServer(t, filepath.Dir(r.dir), host, client.PublicKey())
	url := "ssh://git@" + addr + "/spec.git"
	knownHosts := []byte(knownhosts.Line([]string{knownhosts.Normalize(addr)}, host.PublicKey()) + "\n")

	a, _, err := New(Options{URL: url, Auth: &Auth{Identity: identity, KnownHosts: knownHosts}, WorkDir: t.TempDir()}).Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if a.Commit != head {
		t.Fatalf("fetched %s, want %s", a.Commit, head)
	}

	// A key the server does not know, and a host key known_hosts does not
	// hold, both fail with an error that shows no key material.
	_, wrongIdentity := sshKey(t)
	otherHost, _ := sshKey(t)
	wrongHosts := []byte(knownhosts.Line([]string{knownhosts.Normalize(addr)}, otherHost.PublicKey()) + "\n")
	for name, auth := range map[string]*Auth{
		"unknown key":  {Identity: wrongIdentity, KnownHosts: knownHosts},
		"unknown host": {Identity: identity, KnownHosts: wrongHosts},
	} {
		_, _, err := New(Options{URL: url, Auth: auth, WorkDir: t.TempDir()}).Fetch(context.Background())
		if err == nil {
			t.Fatalf("%s: the fetch succeeded", name)
		}
		if strings.Contains(err.Error(), "PRIVATE KEY") || strings.Contains(err.Error(), string(identity[40:80])) {
			t.Fatalf("%s: the error shows the key: %v", name, err)
		}
		t.Logf("%s: %v", name, err)
	}
}
