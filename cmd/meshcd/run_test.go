package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// serveLoop starts serveWhile on a fresh loopback listener with loop and
// returns the listener and serveWhile's result.
func serveLoop(t *testing.T, ctx context.Context, log io.Writer, loop func(context.Context) error) (net.Listener, <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	srv := &http.Server{Handler: http.NotFoundHandler(), ReadHeaderTimeout: time.Second}
	go func() { done <- serveWhile(ctx, slog.New(slog.NewTextHandler(log, nil)), srv, ln, loop) }()
	return ln, done
}

func waitDone(t *testing.T, done <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: still running after 10 s", what)
		return nil
	}
}

func TestServeWhile_ADeadListenerEndsTheLoopWithALoggedError(t *testing.T) {
	var log strings.Builder
	loopEnded := make(chan struct{})
	ln, done := serveLoop(t, context.Background(), &log, func(ctx context.Context) error {
		<-ctx.Done() // as Controller.Run and RunElected: they end with their context
		close(loopEnded)
		return nil
	})
	// The server answers until its listener dies.
	var resp *http.Response
	var err error
	for range 50 {
		if resp, err = http.Get("http://" + ln.Addr().String() + "/"); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("the server never answered: %v", err)
	}
	_ = resp.Body.Close()

	_ = ln.Close()
	err = waitDone(t, done, "serveWhile after its listener died")
	select {
	case <-loopEnded:
	default:
		t.Fatal("serveWhile returned before the loop ended")
	}
	if err == nil || !strings.Contains(err.Error(), "the server of /metrics, /healthz, /readyz and /hook on "+ln.Addr().String()+" stopped") {
		t.Fatalf("the error names the server and its address: %v", err)
	}
	if !strings.Contains(log.String(), `level=ERROR msg="server stopped"`) {
		t.Fatalf("the server's end is not logged:\n%s", log.String())
	}
}

func TestServeWhile_ALoopThatFailsClosesTheServer(t *testing.T) {
	failed := errors.New("reconcile loop failed")
	start := make(chan struct{})
	ln, done := serveLoop(t, context.Background(), io.Discard, func(ctx context.Context) error {
		<-start
		return failed
	})
	close(start)
	if err := waitDone(t, done, "serveWhile after its loop failed"); !errors.Is(err, failed) || strings.Contains(err.Error(), "server") {
		t.Fatalf("serveWhile returns the loop's error alone, got %v", err)
	}
	if c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		_ = c.Close()
		t.Fatal("the server still accepts connections after the loop failed")
	}
}

func TestServeWhile_CancelledContextEndsBothWithoutError(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	_, done := serveLoop(t, ctx, io.Discard, func(ctx context.Context) error {
		<-ctx.Done()
		return nil
	})
	cancel()
	if err := waitDone(t, done, "serveWhile after its context ended"); err != nil {
		t.Fatalf("a cancelled run is no error: %v", err)
	}
}
