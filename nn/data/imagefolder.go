package data

// Image-folder data sets, on disk or in a tar archive: one sub-folder per
// class, as torchvision's ImageFolder reads them. Both sources are first
// reduced to the same listing (image files and folders, as slash-separated
// paths from the root) and then go through one layout resolver, so that a
// folder and a tar of it give the same classes and the same sample order.

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/varpar/varpar/nn"
)

// maxFolderDepth bounds how deep a folder walk goes: data sets are two or
// three levels deep, and a bound keeps a symbolic-link maze finite.
const maxFolderDepth = 32

// folderListing is what a folder or an archive holds, before the layout is
// interpreted.
type folderListing struct {
	images  []imageEntry        // files with an image extension, not hidden
	dirs    map[string]struct{} // every folder, including those only implied by a file's path; "" is the root
	ignored map[string]struct{} // other regular files, not hidden: not images by their name, or beside the class folders
}

// ignore records a file left out; a name seen twice (a tar may repeat a
// member) counts once.
func (l *folderListing) ignore(rel string) {
	if l.ignored == nil {
		l.ignored = map[string]struct{}{}
	}
	l.ignored[rel] = struct{}{}
}

func newFolderListing() *folderListing {
	return &folderListing{dirs: map[string]struct{}{"": {}}}
}

// addDir records dir and all its parents.
func (l *folderListing) addDir(dir string) {
	for dir != "" && dir != "." {
		if _, ok := l.dirs[dir]; ok {
			return
		}
		l.dirs[dir] = struct{}{}
		dir = parentDir(dir)
	}
}

// parentDir is the slash-separated parent of rel, "" at the top.
func parentDir(rel string) string {
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		return rel[:i]
	}
	return ""
}

// isImageName reports whether a file name has an image extension: only
// those files are taken as images (and must then decode).
func isImageName(name string) bool {
	ext := strings.ToLower(path.Ext(name))
	return ext == ".jpg" || ext == ".jpeg" || ext == ".png"
}

// isHidden reports whether a path component is hidden (".DS_Store",
// "._0001.jpg" macOS resource forks inside tarballs, ".git").
func isHidden(name string) bool { return strings.HasPrefix(name, ".") }

// loadImageFolder loads a data set from a directory.
func loadImageFolder(dir string, opts LoadOptions) (*Dataset, error) {
	l := newFolderListing()
	root, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if err := walkFolder(l, dir, "", []os.FileInfo{root}); err != nil {
		return nil, err
	}
	return finishFolder(dir, l, opts, func(rel string) string { return filepath.Join(dir, filepath.FromSlash(rel)) })
}

// walkFolder lists the folder dir, whose path from the data-set root is
// rel, into l. Symbolic links are followed (data sets are often assembled
// from links), except into a folder that is one of its own ancestors.
func walkFolder(l *folderListing, dir, rel string, ancestors []os.FileInfo) error {
	if len(ancestors) > maxFolderDepth {
		return &DatasetError{Path: dir, Msg: fmt.Sprintf("folders nested more than %d deep", maxFolderDepth)}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err // *PathError names the folder
	}
	for _, e := range ents {
		name := e.Name()
		if isHidden(name) {
			continue
		}
		full := filepath.Join(dir, name)
		childRel := name
		if rel != "" {
			childRel = rel + "/" + name
		}
		isDir := e.IsDir()
		var info os.FileInfo
		if e.Type()&os.ModeSymlink != 0 || isDir {
			// A link's target decides; a dangling link to "x.jpg" is kept
			// as an image, so that it is reported as unreadable.
			if info, err = os.Stat(full); err == nil {
				isDir = info.IsDir()
			}
		}
		switch {
		case isDir:
			if slices.ContainsFunc(ancestors, func(a os.FileInfo) bool { return os.SameFile(a, info) }) {
				continue // a link back up the tree
			}
			l.addDir(childRel)
			if err := walkFolder(l, full, childRel, append(ancestors, info)); err != nil {
				return err
			}
		case isImageName(name):
			l.images = append(l.images, imageEntry{rel: childRel, path: full, file: full})
		case e.Type().IsRegular() || info != nil && info.Mode().IsRegular():
			l.ignore(childRel) // not FIFOs, sockets, devices or dangling links
		}
	}
	return nil
}

// loadTar loads a data set from a tar stream (already gunzipped); name is
// the archive's path, for messages and Sample.Path.
func loadTar(name string, r io.Reader, opts LoadOptions) (*Dataset, error) {
	l, err := readTar(name, r)
	if err != nil {
		return nil, err
	}
	return finishFolder(name, l, opts, func(rel string) string { return name + ":" + rel })
}

// maxTarDrain bounds how much is read after a tar's end marker to reach
// the end of a gzip stream (and so check its CRC): normally a few KB of
// zero padding.
const maxTarDrain = 16 << 20

// readTar lists a tar stream, keeping the bytes of image members. A later
// member of the same name replaces an earlier one, as tar extraction does.
// A truncated or corrupt archive is an error naming it (and the member
// being read); an oversized image member is a bad image, left to the
// policy.
func readTar(name string, r io.Reader) (*folderListing, error) {
	l := newFolderListing()
	byRel := map[string]int{}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil && !(errors.Is(err, tar.ErrInsecurePath) && hdr != nil) {
			// Names like "../x" are judged below, not refused wholesale.
			return nil, tarErr(name, "", "reading the next member header", err)
		}
		member := hdr.Name
		// Rooted at "/", Clean removes "./" prefixes and any "..": the
		// archive is never extracted, so a member name only places the
		// member in the listing.
		rel := path.Clean("/" + member)[1:]
		if rel == "" {
			continue // the archive's "./"
		}
		if slices.ContainsFunc(strings.Split(rel, "/"), isHidden) {
			continue
		}
		// Whatever the member, its folder exists, as it would on disk.
		l.addDir(parentDir(rel))
		switch hdr.Typeflag {
		case tar.TypeDir:
			l.addDir(rel)
			continue
		case tar.TypeReg, tar.TypeGNUSparse: // archive/tar reports pre-POSIX regular files as TypeReg
		default:
			continue // links, devices, FIFOs: not images
		}
		if !isImageName(rel) {
			l.ignore(rel)
			continue
		}
		e := imageEntry{rel: rel, path: name + ":" + rel}
		switch {
		case isSparse(hdr):
			// A sparse member's holes cost nothing in the archive: a few
			// bytes could stand for 128 MB of zeros, times every member.
			// No tool writes images that way; refuse it as a bad image.
			e.err = &nn.FormatError{File: e.path, Msg: "sparse tar member: not supported for images"}
		case hdr.Size > nn.MaxImageBytes:
			e.err = &nn.SizeError{File: e.path, What: "image file", Size: hdr.Size, Limit: nn.MaxImageBytes}
		case hdr.Size >= 0:
			// hdr.Size is checked by the tar reader against the data that
			// follows only as it is read, so grow with the data, not the
			// declared size.
			data, err := readUpTo(tr, make([]byte, 0, min(hdr.Size, 64<<10)), int(hdr.Size))
			if err != nil {
				return nil, tarErr(name, member, "reading the member", err)
			}
			e.data = data
		}
		if i, ok := byRel[rel]; ok {
			l.images[i] = e
		} else {
			byRel[rel] = len(l.images)
			l.images = append(l.images, e)
		}
	}
	// Reach the end of the underlying stream so that a gzip CRC mismatch
	// is noticed.
	if _, err := io.CopyN(io.Discard, r, maxTarDrain); err != nil && err != io.EOF {
		return nil, tarErr(name, "", "reading past the end of the archive", err)
	}
	return l, nil
}

// tarErr names the archive (and the member) in a read error, telling
// truncation and corruption from I/O failure.
func tarErr(name, member, what string, err error) error {
	where := name
	if member != "" {
		where = name + ":" + member
	}
	if errors.Is(err, tar.ErrHeader) || errors.Is(err, tar.ErrFieldTooLong) {
		return &nn.FormatError{File: where, Msg: fmt.Sprintf("corrupt tar archive, %s: %v", what, err)}
	}
	return streamReadErr(where, what, err)
}

// finishFolder resolves the layout of a listing (wrapper folders, classes)
// and decodes its images. display turns a path relative to the data-set
// root into what messages call it.
func finishFolder(where string, l *folderListing, opts LoadOptions, display func(rel string) string) (*Dataset, error) {
	// Sub-folders and image counts per folder.
	subdirs := map[string][]string{}
	for d := range l.dirs {
		if d != "" {
			p := parentDir(d)
			subdirs[p] = append(subdirs[p], d)
		}
	}
	for _, s := range subdirs {
		slices.Sort(s)
	}
	imagesIn := map[string]int{}
	for _, e := range l.images {
		imagesIn[parentDir(e.rel)]++
	}

	root := ""
	for {
		subs := subdirs[root]
		if len(subs) == 1 && imagesIn[root] == 0 && len(subdirs[subs[0]]) > 0 {
			root = subs[0]
			continue
		}
		break
	}
	classDirs := subdirs[root]
	if len(classDirs) == 0 {
		msg := "no class folders: expected one sub-folder per class holding its images"
		if n := imagesIn[root]; n > 0 {
			msg += fmt.Sprintf(" (found %d images directly in the top folder)", n)
		}
		return nil, &DatasetError{Path: where, Msg: msg}
	}
	prefix := ""
	if root != "" {
		prefix = root + "/"
	}
	classes := make([]string, len(classDirs))
	label := make(map[string]int, len(classDirs))
	for i, d := range classDirs {
		classes[i] = d[len(prefix):]
		label[classes[i]] = i
	}

	var chosen []imageEntry
	for _, e := range l.images {
		rest, ok := strings.CutPrefix(e.rel, prefix)
		if !ok {
			continue // outside the root: cannot happen past a wrapper, which holds no images
		}
		class, _, nested := strings.Cut(rest, "/")
		if !nested {
			l.ignore(e.rel) // an image beside the class folders
			continue
		}
		e.label = label[class]
		chosen = append(chosen, e)
	}
	slices.SortFunc(chosen, func(a, b imageEntry) int {
		if a.label != b.label {
			return a.label - b.label
		}
		return strings.Compare(a.rel, b.rel)
	})
	count := make([]int, len(classes))
	for _, e := range chosen {
		count[e.label]++
	}
	for i, c := range count {
		if c == 0 {
			return nil, &DatasetError{Path: display(classDirs[i]), Msg: fmt.Sprintf("class %q has no images (*.jpg, *.jpeg, *.png)", classes[i])}
		}
	}

	samples, err := decodeEntries(chosen, opts)
	if err != nil {
		return nil, err
	}
	clear(count)
	for _, s := range samples {
		count[s.Label]++
	}
	for i, c := range count {
		if c == 0 {
			return nil, &DatasetError{Path: display(classDirs[i]), Msg: fmt.Sprintf("class %q has no images left after skipping the bad ones", classes[i])}
		}
	}
	d := &Dataset{Name: datasetName(where), Classes: classes, Samples: samples, Ignored: len(l.ignored)}
	if len(l.ignored) > 0 {
		d.IgnoredExample = display(slices.Min(slices.Collect(maps.Keys(l.ignored))))
	}
	return d, nil
}

// isSparse reports whether a tar member is stored as a sparse file, in the
// old GNU format or in one of GNU's PAX formats.
func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}
