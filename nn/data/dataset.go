package data

// Sample is one labelled picture held in memory as 8-bit RGB.
type Sample struct {
	W, H  int
	Pix   []uint8 // RGB, row-major: Pix[(y*W+x)*3+c]
	Label int     // index into the dataset's Classes
	Path  string  // where it came from (file, archive member or "idx:N"), for messages
}

// Dataset is a labelled image collection, fully decoded in memory (CIFAR-10's
// 50,000 32x32 training images take 150 MB).
type Dataset struct {
	Name    string
	Classes []string // ordered: label i is Classes[i]
	Samples []Sample

	// Ignored counts the files of an image folder or archive left out
	// because their names are not *.jpg, *.jpeg or *.png, or because they
	// lie beside the class folders (hidden files aside), so that a caller
	// can say so: a folder of .bmp or .webp images would otherwise lose
	// them without a word. IgnoredExample is the first in byte order.
	Ignored        int
	IgnoredExample string
}

// BadImagePolicy says what a loader does with an image it cannot decode.
type BadImagePolicy int

const (
	FailOnBadImage BadImagePolicy = iota // stop and return the error (the default)
	SkipBadImage                         // report it through LoadOptions.Warn and go on
)

// LoadOptions tune dataset loading.
type LoadOptions struct {
	MaxPixels  int64                        // per-image pixel budget (0: DefaultMaxPixels)
	OnBadImage BadImagePolicy               // corrupt or unreadable images
	Warn       func(path string, err error) // told of every skipped image; never nil when skipping
	Progress   func(loaded int)             // called now and then while loading; may be nil
}
