package data

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// hint tailors error messages to the dataset a file belongs to.
type hint struct {
	// what names a file of the expected kind, e.g. "a Fashion-MNIST label
	// file"; %s is replaced by the kind ("label", "image", "batch").
	what string
	// fix says how to get an intact copy, e.g. "reinstall with make data".
	fix string
	// missing says how to obtain a missing file.
	missing string
}

// genericIDX is the hint used by the exported low-level IDX readers.
var genericIDX = hint{
	what:    "an IDX %s file",
	fix:     "replace it with an intact copy of the file",
	missing: "check the path, or fetch the file again",
}

// notA reports a file that is not of the expected kind.
func (h hint) notA(kind string) string {
	return "the file is not " + fmt.Sprintf(h.what, kind) + " — " + h.fix
}

// damaged reports a file of the right kind that is damaged or incomplete.
func (h hint) damaged() string {
	return "the file is damaged or incomplete — " + h.fix
}

// corrupt returns an error wrapping ErrCorrupt of the form
// "path: problem: corrupt dataset file; advice".
func corrupt(path, problem, advice string) error {
	return fmt.Errorf("%s: %s: %w; %s", path, problem, ErrCorrupt, advice)
}

// openError turns an error from os.Open or os.Stat of path into a message
// that names the file and wraps ErrMissing when the file does not exist.
func openError(path string, err error, h hint) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: no such file: %w; %s", path, ErrMissing, h.missing)
	}
	return fmt.Errorf("%s: cannot open: %w; check the file's permissions", path, err)
}

// dataFile is an open dataset file, read through bufio and, when the file
// starts with the gzip magic bytes 1f 8b, through a gzip decompressor.
type dataFile struct {
	path string
	h    hint
	f    *os.File
	size int64 // size of the file on disk
	gz   bool  // whether the content is gzip-compressed
	r    io.Reader
}

// gzipMagic is the first two bytes of every gzip stream (RFC 1952).
var gzipMagic = []byte{0x1f, 0x8b}

// openData opens path, detecting gzip compression by its magic bytes
// (whatever the file's name).
func openData(path string, h hint) (*dataFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, openError(path, err, h)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, openError(path, err, h)
	}
	if st.IsDir() {
		f.Close()
		return nil, fmt.Errorf("%s: is a folder, not a file: %w; %s", path, ErrMissing, h.missing)
	}
	d := &dataFile{path: path, h: h, f: f, size: st.Size()}
	br := bufio.NewReaderSize(f, 1<<20)
	if magic, _ := br.Peek(2); bytes.Equal(magic, gzipMagic) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, corrupt(path, fmt.Sprintf("starts like gzip (1f 8b) but has no valid gzip header (%v)", err), h.damaged())
		}
		d.gz, d.r = true, zr
	} else {
		d.r = br
	}
	return d, nil
}

// Close closes the underlying file.
func (d *dataFile) Close() { d.f.Close() }

// streamError describes an error from reading the decompressed gzip stream.
func (d *dataFile) streamError(err error, during string) error {
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return corrupt(d.path, "truncated gzip stream (it ends "+during+")", d.h.damaged())
	case errors.Is(err, gzip.ErrChecksum):
		return corrupt(d.path, "gzip checksum mismatch "+during, d.h.damaged())
	default:
		return corrupt(d.path, fmt.Sprintf("broken gzip stream %s (%v)", during, err), d.h.damaged())
	}
}

// header reads exactly len(buf) header bytes.
func (d *dataFile) header(buf []byte, kind string) error {
	n, err := io.ReadFull(d.r, buf)
	if err == nil {
		return nil
	}
	if errors.Is(err, io.EOF) || (errors.Is(err, io.ErrUnexpectedEOF) && !d.gz) {
		where := "file"
		if d.gz {
			where = "decompressed content"
		}
		return corrupt(d.path, fmt.Sprintf("%s is only %d bytes, too short for the %d-byte %s header",
			where, n, len(buf), kind), d.h.notA(kind))
	}
	if d.gz {
		return d.streamError(err, "inside the header")
	}
	return fmt.Errorf("%s: read error: %w; check the disk and the file's permissions", d.path, err)
}

// bigRead is the largest body allocated up front before any of it is read;
// a gzip stream claiming more is read incrementally, so that a corrupt
// header cannot make us allocate memory the file does not back.
const bigRead = 1 << 26

// body reads exactly n more data bytes after a header of headerLen bytes and
// checks that nothing follows them: for a raw file by comparing the file
// size, for gzip by reading to the end of the stream (which also verifies the
// gzip CRC and length trailer).
func (d *dataFile) body(headerLen, n int64) ([]byte, error) {
	if !d.gz {
		want := headerLen + n
		switch {
		case d.size < want:
			return nil, corrupt(d.path, fmt.Sprintf("file is %d bytes, want %d (%d-byte header + %d data bytes): truncated, %d bytes missing",
				d.size, want, headerLen, n, want-d.size), d.h.damaged())
		case d.size > want:
			return nil, corrupt(d.path, fmt.Sprintf("file is %d bytes, want %d (%d-byte header + %d data bytes): %d trailing bytes after the data",
				d.size, want, headerLen, n, d.size-want), d.h.damaged())
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(d.r, buf); err != nil {
			return nil, fmt.Errorf("%s: read error: %w; check the disk and the file's permissions", d.path, err)
		}
		return buf, nil
	}
	var buf []byte
	var got int64
	var err error
	if n <= bigRead {
		buf = make([]byte, n)
		var k int
		k, err = io.ReadFull(d.r, buf)
		got = int64(k)
		// ReadFull reports a short read as io.ErrUnexpectedEOF both for a
		// complete but short stream and for a truncated one; tell them apart.
		if errors.Is(err, io.ErrUnexpectedEOF) && isCleanEnd(d.r) {
			err = io.EOF
		}
	} else {
		var b bytes.Buffer
		b.Grow(1 << 20) // grows with the data actually read
		got, err = io.CopyN(&b, d.r, n)
		buf = b.Bytes()
	}
	switch {
	case err == nil:
	case err == io.EOF:
		return nil, corrupt(d.path, fmt.Sprintf("decompressed content holds %d data bytes after the %d-byte header, want %d: truncated, %d bytes missing",
			got, headerLen, n, n-got), d.h.damaged())
	default:
		return nil, d.streamError(err, fmt.Sprintf("after %d of %d data bytes", got, n))
	}
	var one [1]byte
	k, err := io.ReadFull(d.r, one[:])
	switch {
	case k > 0:
		extra, _ := io.Copy(io.Discard, d.r)
		return nil, corrupt(d.path, fmt.Sprintf("decompressed content has %d trailing bytes after the %d-byte header and %d data bytes",
			extra+1, headerLen, n), d.h.damaged())
	case errors.Is(err, io.EOF):
		return buf, nil
	default:
		return nil, d.streamError(err, "after the data (at the gzip trailer)")
	}
}

// isCleanEnd reports whether r, after io.ReadFull returned
// io.ErrUnexpectedEOF, is at a clean end of stream (io.EOF) rather than in a
// truncated gzip stream.
func isCleanEnd(r io.Reader) bool {
	var one [1]byte
	_, err := r.Read(one[:])
	return err == io.EOF
}
