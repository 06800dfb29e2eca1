// Command acmesolver is cert-manager's HTTP-01 solver server (pkg/issuer/acme/http/solver
// of the module github.com/cert-manager/cert-manager) with the release command's flags, the
// ones cert-manager's controller gives the solver pod it creates. Our own main for the same
// reason as ../controller: the release's command module is not on the Go module proxy.
//
// The server listens on every address of its network namespace, as in its pod: run it in
// a network namespace of its own (scripts/cert-manager.sh solver does).
package main

import (
	"context"
	"errors"
	"flag"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/cert-manager/cert-manager/pkg/issuer/acme/http/solver"
	logf "github.com/cert-manager/cert-manager/pkg/logs"
)

func main() {
	s := new(solver.HTTP01Solver)
	flag.IntVar(&s.ListenPort, "listen-port", 8089, "the port number to listen on for connections")
	flag.StringVar(&s.Domain, "domain", "", "the domain name to verify")
	flag.StringVar(&s.Token, "token", "", "the challenge token to verify against")
	flag.StringVar(&s.Key, "key", "", "the challenge key to respond with")
	flag.Parse()
	logf.InitLogs()
	defer logf.FlushLogs()
	log := logf.Log.WithName("acmesolver")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(shutdown)
	}()
	if err := s.Listen(log); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error(err, "acmesolver failed")
		logf.FlushLogs()
		os.Exit(1)
	}
}
