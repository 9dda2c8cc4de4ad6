package local

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/varpar/varpar/peer/api"
)

// Peer is one peer process.
type Peer struct {
	Name       string
	DataDir    string
	LogPath    string
	GossipAddr string
	P2PAddr    string
	HTTPAddr   string
	API        *api.Client // its HTTP API

	cmd     *exec.Cmd
	exited  chan struct{} // closed when the process has been waited for
	waitErr error         // written before exited is closed
}

// start runs exe with args, its output into the log file, and the waiter
// that closes exited (the one goroutine a peer owns; it ends with the
// process).
func (p *Peer) start(exe string, args []string, attr *syscall.SysProcAttr) error {
	logFile, err := os.Create(p.LogPath)
	if err != nil {
		return err
	}
	p.cmd = exec.Command(exe, args...)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	p.cmd.SysProcAttr = attr
	if err := p.cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		logFile.Close()
		close(p.exited)
	}()
	return nil
}

// PID is the process id.
func (p *Peer) PID() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended (and been waited for).
func (p *Peer) Exited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// Done is closed when the process has ended and been waited for.
func (p *Peer) Done() <-chan struct{} { return p.exited }

// ExitErr is how the process ended (nil: exit status 0); valid once Exited.
func (p *Peer) ExitErr() error {
	if !p.Exited() {
		return nil
	}
	return p.waitErr
}

// Kill ends the process with SIGKILL and waits for it.
func (p *Peer) Kill() error {
	if p.Exited() {
		return nil
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("local: kill %s: %w", p.Name, err)
	}
	select {
	case <-p.exited:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("local: %s (pid %d) still running 10s after SIGKILL", p.Name, p.PID())
	}
}

// Stop asks the peer to leave (SIGTERM) and kills it if it has not exited
// after timeout.
func (p *Peer) Stop(timeout time.Duration) error {
	if p.Exited() {
		return nil
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return p.Kill()
	}
	select {
	case <-p.exited:
		return nil
	case <-time.After(timeout):
		return p.Kill()
	}
}

// Tail returns the last n lines of the peer's log.
func (p *Peer) Tail(n int) string {
	f, err := os.Open(p.LogPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	const window = 64 << 10 // enough for n lines of JSON logs
	if fi, err := f.Stat(); err == nil && fi.Size() > window {
		f.Seek(fi.Size()-window, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// LogTails formats the last n lines of each peer's log, for an error.
func LogTails(ps []*Peer, n int) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "\n--- %s (%s), last lines:\n%s", p.Name, p.LogPath, p.Tail(n))
	}
	return b.String()
}
