package data

import (
	"encoding/binary"
	"fmt"
	"math/bits"
)

// IDX magic numbers: two zero bytes, the element type (0x08 = unsigned
// byte) and the number of dimensions, read as one big-endian uint32.
const (
	idxImagesMagic = 0x00000803 // ubyte, 3 dims: n, rows, cols
	idxLabelsMagic = 0x00000801 // ubyte, 1 dim: n
)

// ReadIDXImages reads an IDX3 unsigned-byte image file (raw, or gzip —
// detected by the magic bytes 1f 8b, whatever the name). The file is a
// 16-byte header — the big-endian uint32s 0x00000803, n, rows, cols —
// followed by exactly n·rows·cols pixel bytes, image after image, each row
// after row. It returns those pixel bytes. Any other magic number, a short
// or long file, trailing bytes or a truncated or damaged gzip stream is an
// error wrapping [ErrCorrupt]; a missing file wraps [ErrMissing].
func ReadIDXImages(path string) (pixels []uint8, n, rows, cols int, err error) {
	return readIDXImages(path, genericIDX)
}

// ReadIDXLabels reads an IDX1 unsigned-byte label file (raw or gzip): the
// big-endian uint32s 0x00000801 and n, followed by exactly n label bytes.
// Errors are as for [ReadIDXImages]. The label values are not checked.
func ReadIDXLabels(path string) ([]uint8, error) {
	return readIDXLabels(path, genericIDX)
}

// readIDXImages is ReadIDXImages with error advice h.
func readIDXImages(path string, h hint) (pixels []uint8, n, rows, cols int, err error) {
	d, err := openData(path, h)
	if err != nil {
		return nil, 0, 0, 0, err
	}
	defer d.Close()
	var hdr [16]byte
	if err := d.header(hdr[:], "image"); err != nil {
		return nil, 0, 0, 0, err
	}
	if m := binary.BigEndian.Uint32(hdr[0:]); m != idxImagesMagic {
		return nil, 0, 0, 0, corrupt(path, fmt.Sprintf("bad magic number 0x%08x, want 0x%08x (IDX images)", m, idxImagesMagic),
			h.notA("image"))
	}
	un := uint64(binary.BigEndian.Uint32(hdr[4:]))
	ur := uint64(binary.BigEndian.Uint32(hdr[8:]))
	uc := uint64(binary.BigEndian.Uint32(hdr[12:]))
	hi, total := bits.Mul64(un, ur*uc) // ur*uc < 2^64 as both are < 2^32
	if hi != 0 || total > 1<<46 {
		return nil, 0, 0, 0, corrupt(path, fmt.Sprintf("header claims %d images of %dx%d pixels, an implausible %d·%d·%d bytes",
			un, ur, uc, un, ur, uc), h.damaged())
	}
	pixels, err = d.body(int64(len(hdr)), int64(total))
	if err != nil {
		return nil, 0, 0, 0, err
	}
	return pixels, int(un), int(ur), int(uc), nil
}

// readIDXLabels is ReadIDXLabels with error advice h.
func readIDXLabels(path string, h hint) ([]uint8, error) {
	d, err := openData(path, h)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	var hdr [8]byte
	if err := d.header(hdr[:], "label"); err != nil {
		return nil, err
	}
	if m := binary.BigEndian.Uint32(hdr[0:]); m != idxLabelsMagic {
		return nil, corrupt(path, fmt.Sprintf("bad magic number 0x%08x, want 0x%08x (IDX labels)", m, idxLabelsMagic),
			h.notA("label"))
	}
	n := int64(binary.BigEndian.Uint32(hdr[4:]))
	return d.body(int64(len(hdr)), n)
}
