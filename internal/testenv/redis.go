package testenv

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Redis is a redis-server process on 127.0.0.1 without persistence
// (save "" and appendonly no, its directory in t.TempDir()), stopped when
// the test that started it ends.
type Redis struct {
	Address  string // "127.0.0.1:port"
	Password string // what AUTH needs; empty when none
	Log      string // file holding the process's output

	proc *Registry // the process (its start, stop and reaping)
}

// StartRedis starts redis-server (Debian's package, which
// scripts/tools-redis.sh installs) on a free port of 127.0.0.1 and waits
// until it answers PING. A missing redis-server is reported by [Missing].
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	return startRedis(t, "")
}

// StartRedisWithPassword is StartRedis with requirepass password, given in
// the configuration file (never on the command line).
func StartRedisWithPassword(t testing.TB, password string) *Redis {
	t.Helper()
	return startRedis(t, password)
}

func startRedis(t testing.TB, password string) *Redis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		Missing(t, "redis-server is not on PATH; run `make tools` (scripts/tools-redis.sh installs Debian's redis-server)")
		return nil
	}
	dir := t.TempDir()
	logFile := filepath.Join(dir, "redis.log")
	for range startTries {
		port, err := freePort()
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		conf := fmt.Sprintf("bind 127.0.0.1\nport %d\nsave \"\"\nappendonly no\ndir %s\ndaemonize no\nprotected-mode yes\nloglevel warning\n", port, dir)
		if password != "" {
			conf += "requirepass " + password + "\n"
		}
		confFile := filepath.Join(dir, "redis.conf")
		if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
			t.Fatalf("testenv: %v", err)
		}
		proc, err := startProcess(t, []string{bin, confFile}, nil, logFile)
		if err != nil {
			t.Fatalf("testenv: starting redis-server: %v", err)
		}
		r := &Redis{Address: fmt.Sprintf("127.0.0.1:%d", port), Password: password, Log: logFile, proc: proc}
		err = r.waitReady()
		if err == nil {
			return r
		}
		proc.stop()
		if !strings.Contains(tail(logFile, 40), "in use") {
			t.Fatalf("testenv: starting redis-server: %v\n--- last lines of %s:\n%s", err, logFile, tail(logFile, 40))
		}
	}
	t.Fatalf("testenv: starting redis-server: no free port after %d tries\n--- last lines of %s:\n%s", startTries, logFile, tail(logFile, 40))
	return nil
}

// waitReady sends PING (after AUTH with a password) until redis-server
// answers PONG or the process exits.
func (r *Redis) waitReady() error {
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-r.proc.done:
			return fmt.Errorf("exited before answering: %v", r.proc.cmd.ProcessState)
		default:
		}
		err := r.ping()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer to PING within %v: %w", startTimeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *Redis) ping() error {
	c, err := net.DialTimeout("tcp", r.Address, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	cmd := "PING\r\n"
	if r.Password != "" {
		cmd = fmt.Sprintf("*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n", len(r.Password), r.Password) + cmd
	}
	if _, err := c.Write([]byte(cmd)); err != nil {
		return err
	}
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		switch line = strings.TrimSpace(line); {
		case line == "+PONG":
			return nil
		case strings.HasPrefix(line, "-"):
			return fmt.Errorf("redis-server answered %s", line)
		}
	}
}

// Stop stops redis-server (SIGTERM, then SIGKILL) and waits until it has
// exited; it may be called more than once.
func (r *Redis) Stop() { r.proc.stop() }
