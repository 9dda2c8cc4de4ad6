package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/varpar/varpar/nn"
	"github.com/varpar/varpar/nn/data"
	"github.com/varpar/varpar/nn/format"
)

// loadOptions turns --on-bad-image into how varpar train and eval load data.
func loadOptions(cmd *cobra.Command, onBad string) (data.LoadOptions, error) {
	opts := data.LoadOptions{MaxPixels: nn.DefaultMaxPixels}
	switch onBad {
	case "fail":
		opts.OnBadImage = data.FailOnBadImage
	case "skip":
		opts.OnBadImage = data.SkipBadImage
		opts.Warn = func(p string, err error) { fmt.Fprintf(cmd.ErrOrStderr(), "varpar: skipping %s: %v\n", p, err) }
	default:
		return opts, usagef("--on-bad-image %q: want fail or skip", onBad)
	}
	return opts, nil
}

// loadDatasetFlag loads varpar eval's data as train.Run loads its own.
func loadDatasetFlag(cmd *cobra.Command, path, onBad string) (*data.Dataset, error) {
	opts, err := loadOptions(cmd, onBad)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	d, err := data.LoadDataset(path, opts)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "loaded %s: %d images, %d classes in %.1fs\n", path, len(d.Samples), len(d.Classes), time.Since(start).Seconds())
	if d.Ignored > 0 {
		fmt.Fprintf(cmd.ErrOrStderr(), "note: %d files left out: not named *.jpg, *.jpeg or *.png, or not inside a class folder (e.g. %s)\n", d.Ignored, d.IgnoredExample)
	}
	return d, nil
}

func checkClasses(d *data.Dataset, m *format.Manifest) error {
	if strings.Join(d.Classes, "\x00") != strings.Join(m.Classes, "\x00") {
		return fmt.Errorf("the data's classes %v differ from the family's %v", d.Classes, m.Classes)
	}
	return nil
}
