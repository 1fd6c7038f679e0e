package bench

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/lastmile/lastmile/engine"
	"github.com/lastmile/lastmile/engine/seal"
	"github.com/lastmile/lastmile/engine/store"
	"github.com/lastmile/lastmile/graph"
)

// stateServer is an in-process server with a dispatch state store on a
// loopback port, for the dispatch benchmarks, and a client holding its
// admin key.
type stateServer struct {
	st     *store.Store
	srv    *engine.Server
	c      *fasthttp.HostClient
	auth   string
	dir    string // temporary SQLite folder ("" on PostgreSQL)
	served chan error
}

// startStateServer serves g with its state in db (a PostgreSQL URL), or
// else in the SQLite file of folder dir (kept), or else of a temporary
// folder, and waits until live traffic is ready. conns bounds the client's
// connections.
func startStateServer(g *graph.Graph, db, dir string, conns int, cfg engine.ServerConfig, log *slog.Logger) (*stateServer, error) {
	s := &stateServer{}
	dsn := db
	if dsn == "" && dir != "" {
		dsn = filepath.Join(dir, engine.StoreFile)
	}
	if dsn == "" {
		dir, err := os.MkdirTemp("", "lastmile-bench-")
		if err != nil {
			return nil, err
		}
		s.dir = dir
		dsn = filepath.Join(dir, engine.StoreFile)
	}
	ring, err := seal.NewRing(seal.GenerateKey(1))
	if dir != "" && db == "" {
		ring, _, err = seal.LoadRing("", dir) // its data.key, for `serve --data dir`
	}
	if err != nil {
		return nil, err
	}
	if s.st, err = store.Open(context.Background(), dsn, store.Options{Ring: ring}); err != nil {
		s.close()
		return nil, err
	}
	admin, _, _ := seal.NewAPIKey()
	cfg.Store, cfg.AdminKey, cfg.Logger = s.st, admin, log
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 64 << 20
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Minute
	}
	if s.srv, err = engine.NewServer(engine.NewRouter(g, 1000), cfg); err != nil {
		s.close()
		return nil, fmt.Errorf("server: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.close()
		return nil, fmt.Errorf("listen on loopback: %w", err)
	}
	s.served = make(chan error, 1)
	go func() { s.served <- s.srv.Serve(ln) }()
	for t := time.Now(); !s.srv.TrafficReady(); time.Sleep(10 * time.Millisecond) {
		if time.Since(t) > 2*time.Minute {
			s.close()
			return nil, fmt.Errorf("traffic not ready after 2 minutes")
		}
	}
	s.c = &fasthttp.HostClient{Addr: ln.Addr().String(), MaxConns: conns, ReadTimeout: 5 * time.Minute, WriteTimeout: time.Minute}
	s.auth = "Bearer " + admin
	return s, nil
}

// post sends a POST with the admin key and returns the status and body.
func (s *stateServer) post(path string, body []byte) (int, []byte, error) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + s.c.Addr + path)
	req.Header.SetMethod("POST")
	req.Header.Set("Authorization", s.auth)
	req.SetBody(body)
	if err := s.c.Do(req, resp); err != nil {
		return 0, nil, err
	}
	return resp.StatusCode(), append([]byte(nil), resp.Body()...), nil
}

// metrics returns the server's /metrics page.
func (s *stateServer) metrics() (string, error) {
	page, status, err := getMetrics(s.c.Addr)
	if err != nil {
		return "", err
	}
	if status != 200 {
		return "", fmt.Errorf("metrics: status %d", status)
	}
	return page, nil
}

// getMetrics fetches the /metrics page of the server at addr.
func getMetrics(addr string) (page string, status int, err error) {
	status, body, err := fasthttp.Get(nil, "http://"+addr+"/metrics")
	if err != nil {
		return "", 0, fmt.Errorf("metrics: %w", err)
	}
	return string(body), status, nil
}

// metricValue returns the value of the unlabelled sample name in a
// /metrics page, and whether there is one.
func metricValue(page, name string) (float64, bool) {
	for line := range strings.Lines(page) {
		rest, ok := strings.CutPrefix(line, name+" ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		return v, err == nil
	}
	return 0, false
}

// close shuts the server down and removes its temporary state.
func (s *stateServer) close() {
	if s.srv != nil && s.served != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.srv.Shutdown(ctx)
		<-s.served
	}
	if s.st != nil {
		s.st.Close()
	}
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
}
