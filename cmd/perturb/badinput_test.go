package main

import (
	"bytes"
	"compress/gzip"
	"database/sql"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/perturb/perturb/nets/data"
	"github.com/perturb/perturb/trials/results"
)

// landscape is a config that needs no dataset and runs in milliseconds.
const landscape = `name = "x"
seed = 1
dtype = "float64"
[trials]
count = 4
n = 6
etas = [0.1]
[[model]]
name = "gauss"
inits = [0]
[[optimizer]]
name = "sgd"
batch = 2
`

// fashionConfig trains logistic regression on the Fashion-MNIST files in
// the folder given by --data (or data.dir, added by a case).
const fashionConfig = `name = "f"
seed = 1
dtype = "float64"
[data]
set = "fashion-mnist"
[trials]
count = 2
n = 4
etas = [0.1]
[[model]]
name = "logistic"
inits = [0]
[[optimizer]]
name = "sgd"
batch = 2
`

var cifarConfig = strings.Replace(fashionConfig, `set = "fashion-mnist"`, `set = "cifar-10"`, 1)

// badCase is one bad input given to perturb run or perturb summarize.
type badCase struct {
	name string
	// cmd is "run" (the default) or "summarize".
	cmd string
	// config is the config text (default landscape), written to DIR/c.toml.
	// "$DATA" in it and in args stands for the dataset folder DIR/data,
	// "$DIR" for the case's temporary folder, "$OUT" for the run directory.
	config string
	// args follow "run DIR/c.toml --out $OUT" (or "summarize $OUT").
	args []string
	// data, if set, writes the dataset folder $DATA.
	data func(t *testing.T, dir string)
	// prior, if set, makes a run directory at $OUT before the bad input:
	// "complete" runs the landscape config, "partial" keeps only its
	// first two trials, "fashion" runs fashionConfig on $DATA.
	prior string
	// damage, if set, changes the prior run (or puts something at $OUT)
	// before the bad input.
	damage func(t *testing.T, out string)
	// env is where the command runs: "" in this process; "ro" in a
	// subprocess that sees $OUT's parent folder as a read-only mount;
	// "full" in a subprocess whose $OUT lies on a small tmpfs.
	env string
	// tmpfs is the size of the tmpfs (env "full"); fill, if >= 0, fills it
	// (after the prior run is copied there) leaving fill bytes free.
	tmpfs string
	fill  int
	// want are substrings of the error: the file, key or value and the fix.
	want []string
	// ok means the command should succeed (a case that is not an error).
	ok bool
}

// TestBadInput gives perturb each kind of bad input — config typos, wrong
// types, out-of-range values, duplicate sweep values, missing, truncated or
// corrupt datasets, a read-only or full output folder, a results file of
// another config, newer schema or damaged — and checks that it exits
// non-zero with exactly one error message naming the file, key or value
// and the fix, and that results stored before stay intact.
func TestBadInput(t *testing.T) {
	cases := []badCase{
		// --- config
		{name: "config typo", config: strings.Replace(landscape, "count = 4", "cuont = 4", 1),
			want: []string{"c.toml: line 5", `key "trials.cuont"`, "unknown key", `did you mean "count"?`}},
		{name: "config typo in a value", config: strings.Replace(landscape, `name = "sgd"`, `name = "sdg"`, 1),
			want: []string{"c.toml: line 12", `key "optimizer[0].name"`, `"sdg" is not an optimizer`, "use one of sgd, gd"}},
		{name: "misspelt model", config: strings.Replace(landscape, `name = "gauss"`, `name = "gaus"`, 1),
			want: []string{"c.toml: line 9", `key "model[0].name"`, `"gaus" is not a model`, "use one of", "gauss"}},
		{name: "wrong type", config: strings.Replace(landscape, "count = 4", `count = "ten"`, 1),
			want: []string{"c.toml: line 5", `key "trials.count"`, `"ten" is a string`, "whole number", "count = 20"}},
		{name: "wrong element type", config: strings.Replace(landscape, "etas = [0.1]", `etas = [0.1, "0.2"]`, 1),
			want: []string{"c.toml: line 7", `key "trials.etas"`, "holds a string", "must be a number", "etas = [0.01, 0.1]"}},
		{name: "table for array of tables", config: strings.Replace(landscape, "[[model]]", "[model]", 1),
			want: []string{"c.toml: line 8", `key "model"`, "start each model with a [[model]] line"}},
		{name: "syntax error", config: strings.Replace(landscape, `dtype = "float64"`, `dtype = "float64`, 1),
			want: []string{"c.toml: line 3", `key "dtype"`, "unterminated string", `close it with "`}},
		{name: "negative eta", config: strings.Replace(landscape, "etas = [0.1]", "etas = [0.1, -0.5]", 1),
			want: []string{"c.toml: line 7", `key "trials.etas"`, "eta -0.5 (entry 2) must be positive"}},
		{name: "zero trials", config: strings.Replace(landscape, "count = 4", "count = 0", 1),
			want: []string{"c.toml: line 5", `key "trials.count"`, "0 trials; need at least 1"}},
		{name: "batch larger than n", config: strings.Replace(landscape, "batch = 2", "batch = 12", 1),
			want: []string{"c.toml: line 13", `key "optimizer[0].batch"`, "batch size 12 is larger than trials.n = 6", "divisor of n: 1, 2, 3, 6"}},
		{name: "negative epochs", config: strings.Replace(landscape, "batch = 2", "batch = 2\nepochs = -1", 1),
			want: []string{"c.toml: line 14", `key "optimizer[0].epochs"`, "epochs = -1 is negative", "must be positive"}},
		{name: "unknown dtype", config: strings.Replace(landscape, "float64", "float16", 1),
			want: []string{"c.toml: line 3", `key "dtype"`, `"float16" is not a dtype`, "float32, float64"}},
		{name: "duplicate etas", config: strings.Replace(landscape, "etas = [0.1]", "etas = [0.1, 0.1]", 1),
			want: []string{"c.toml: line 7", `key "trials.etas"`, "eta 0.1 listed twice", "remove the duplicate"}},
		{name: "duplicate inits", config: strings.Replace(landscape, "inits = [0]", "inits = [0, 2, 0]", 1),
			want: []string{"c.toml: line 10", `key "model[0].inits"`, "initialisation 0 listed twice", "remove the duplicate"}},
		{name: "duplicate key", config: strings.Replace(landscape, "n = 6", "n = 6\nn = 8", 1),
			want: []string{"c.toml: line 7", `key "trials.n"`, "n is set twice", "keep one"}},
		{name: "missing config", damage: func(t *testing.T, out string) {
			os.Remove(filepath.Join(filepath.Dir(out), "c.toml"))
		}, want: []string{"c.toml: no such file", "check the path"}},
		{name: "out-of-range flag", args: []string{"--k", "-3"},
			want: []string{"--k -3", "must be positive", "omit them for the defaults"}},
		{name: "out-of-range shard", args: []string{"--shard", "3/2"},
			want: []string{`--shard: invalid shard "3/2"`, "want I/N with 1 <= I <= N"}},

		// --- datasets
		{name: "missing data folder", config: fashionConfig, args: []string{"--data", "$DIR/nowhere"},
			want: []string{"nowhere: Fashion-MNIST folder", "does not exist", "run make data", "data dir"}},
		{name: "missing data folder (data.dir)", config: withDataDir(fashionConfig, "$DIR/nowhere"),
			want: []string{"nowhere: Fashion-MNIST folder", "data.dir", "does not exist", "run make data"}},
		{name: "data folder is a file", config: fashionConfig, args: []string{"--data", "$DIR/c.toml"},
			want: []string{"c.toml: Fashion-MNIST folder", "not a folder", "run make data"}},
		{name: "missing data file", config: fashionConfig, args: []string{"--data", "$DATA"},
			data: fashionData(func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, "t10k-labels-idx1-ubyte")) }),
			want: []string{"t10k-labels-idx1-ubyte.gz: no such file", "run make data", "t10k-labels-idx1-ubyte"}},
		{name: "truncated data file", config: fashionConfig, args: []string{"--data", "$DATA"},
			data: fashionData(func(t *testing.T, dir string) {
				truncate(t, filepath.Join(dir, "train-images-idx3-ubyte"), 16+5000)
			}),
			want: []string{"train-images-idx3-ubyte: file is 5016 bytes, want 47040016", "truncated", "reinstall with make data"}},
		{name: "truncated gzip data file", config: withDataDir(fashionConfig, "$DATA"),
			data: fashionData(func(t *testing.T, dir string) {
				p := filepath.Join(dir, "train-labels-idx1-ubyte")
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				z := gzipBytes(t, b)
				os.Remove(p)
				writeBytes(t, p+".gz", z[:len(z)/2])
			}),
			want: []string{"train-labels-idx1-ubyte.gz: truncated gzip stream", "damaged or incomplete", "reinstall with make data"}},
		{name: "truncated real data file", config: fashionConfig, args: []string{"--data", "$DATA"},
			data: realFashionData(func(t *testing.T, dir string) {
				p := filepath.Join(dir, "t10k-images-idx3-ubyte.gz")
				fi, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				truncate(t, p, fi.Size()-1000)
			}),
			want: []string{"t10k-images-idx3-ubyte.gz: truncated gzip stream", "reinstall with make data"}},
		{name: "corrupt data file: bad magic", config: fashionConfig, args: []string{"--data", "$DATA"},
			data: fashionData(func(t *testing.T, dir string) {
				// The labels file is the images file by mistake.
				copyFile(t, filepath.Join(dir, "t10k-images-idx3-ubyte"), filepath.Join(dir, "train-labels-idx1-ubyte"))
			}),
			want: []string{"train-labels-idx1-ubyte: bad magic number 0x00000803, want 0x00000801", "not a Fashion-MNIST label file", "reinstall with make data"}},
		{name: "corrupt data file: wrong image size", config: fashionConfig, args: []string{"--data", "$DATA"},
			data: fashionData(func(t *testing.T, dir string) {
				writeIDX(t, filepath.Join(dir, "train-images-idx3-ubyte"), []uint32{0x803, 60000, 32, 32}, 60000*32*32)
			}),
			want: []string{"train-images-idx3-ubyte: images are 32x32, want 28x28", "reinstall with make data"}},
		{name: "corrupt data file: wrong count", config: fashionConfig, args: []string{"--data", "$DATA"},
			data: fashionData(func(t *testing.T, dir string) {
				writeIDX(t, filepath.Join(dir, "t10k-labels-idx1-ubyte"), []uint32{0x801, 9999}, 9999)
			}),
			want: []string{"t10k-labels-idx1-ubyte: 9999 labels, but", "t10k-images-idx3-ubyte has 10000 images", "same split"}},
		{name: "corrupt data file: label out of range", config: fashionConfig, args: []string{"--data", "$DATA"},
			data: fashionData(func(t *testing.T, dir string) {
				poke(t, filepath.Join(dir, "t10k-labels-idx1-ubyte"), 8+123, 10)
			}),
			want: []string{"t10k-labels-idx1-ubyte: label 10 of example 123 is out of range [0, 10)", "reinstall with make data"}},
		{name: "corrupt data file after a run", config: fashionConfig, args: []string{"--data", "$DATA"},
			data: fashionData(nil), prior: "fashion",
			damage: func(t *testing.T, out string) {
				poke(t, filepath.Join(filepath.Dir(out), "data", "train-images-idx3-ubyte"), 2, 9)
			},
			want: []string{"train-images-idx3-ubyte: bad magic number 0x00000903", "reinstall with make data"}},
		{name: "missing CIFAR-10 batch", config: cifarConfig, args: []string{"--data", "$DATA"},
			data: cifarData(func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, "data_batch_4.bin")) }),
			want: []string{"data_batch_4.bin: no such file", "scripts/get-cifar10.sh"}},
		{name: "truncated CIFAR-10 batch", config: cifarConfig, args: []string{"--data", "$DATA"},
			data: cifarData(func(t *testing.T, dir string) { truncate(t, filepath.Join(dir, "data_batch_2.bin"), 3073+1000) }),
			want: []string{"data_batch_2.bin: file is 4073 bytes, not a multiple of the 3073-byte record", "truncated", "scripts/get-cifar10.sh"}},
		{name: "corrupt CIFAR-10 batch", config: cifarConfig, args: []string{"--data", "$DATA"},
			data: cifarData(func(t *testing.T, dir string) { poke(t, filepath.Join(dir, "test_batch.bin"), 3073, 200) }),
			want: []string{"test_batch.bin: label 200 of record 1", "out of range", "scripts/get-cifar10.sh"}},

		// --- results file and run directory
		{name: "results of another config", config: strings.Replace(landscape, "seed = 1", "seed = 2", 1), prior: "complete",
			want: []string{"$OUT holds a run of another config", "choose another --out", "resume with the stored config $OUT/config.toml", "seed: 1 -> 2"}},
		{name: "results of another shard", prior: "complete", args: []string{"--shard", "1/2"},
			want: []string{"$OUT holds the whole run of config x, not shard 1/2", "use no --shard, or another --out"}},
		{name: "results with a newer schema", prior: "complete", damage: setSchema(99),
			want: []string{"$OUT/results.sqlite has schema_version 99", "supports schema_version 5 at most", "newer perturb"}},
		{name: "summarize results with a newer schema", cmd: "summarize", prior: "complete", damage: setSchema(99),
			want: []string{"$OUT/results.sqlite has schema_version 99", "newer perturb"}},
		{name: "damaged results file", prior: "partial", damage: func(t *testing.T, out string) {
			writeBytes(t, filepath.Join(out, resultsFile), bytes.Repeat([]byte("not SQLite "), 1000))
		},
			want: []string{"$OUT/results.sqlite is not a perturb results store", "restore it from a backup", "choose another --out"}},
		{name: "out is a file", damage: func(t *testing.T, out string) { writeBytes(t, out, []byte("keep me")) },
			want: []string{"create run directory $OUT", "is a file, not a folder", "choose another --out"}},

		// --- read-only output folder
		{name: "read-only folder", env: "ro",
			want: []string{"create run directory $OUT: ", "the folder $DIR/ro is not writable", "make it writable, or choose another --out"}},
		{name: "read-only folder, resume", env: "ro", prior: "partial",
			want: []string{"$OUT/results.sqlite", "the folder $OUT is not writable", "make it writable, or choose another --out"}},
		{name: "read-only folder, summarize", env: "ro", prior: "complete", cmd: "summarize", ok: true},

		// --- full disk
		{name: "disk full mid-run", env: "full", tmpfs: "256k", fill: -1,
			config: strings.Replace(landscape, "count = 4", "count = 4000", 1),
			want: []string{"$OUT/results.sqlite", "the disk holding $OUT is full", "free some space there, or choose another --out",
				"of 4000 trials are stored in $OUT and stay valid", "resume with: perturb run"}},
		{name: "disk full before start", env: "full", tmpfs: "64k", fill: 0,
			want: []string{"write $OUT/config.toml: no space left on device", "the disk holding $OUT is full", "choose another --out"}},
		{name: "disk full creating the store", env: "full", tmpfs: "64k", fill: 12 << 10,
			want: []string{"results: create $OUT/results.sqlite", "the disk holding $OUT is full", "choose another --out"}},
		{name: "disk full, resume", env: "full", tmpfs: "256k", fill: 0, prior: "partial",
			want: []string{"$OUT/results.sqlite", "the disk holding $OUT is full", "choose another --out"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.check(t)
		})
	}
}

// check runs the case and checks the error and the stored results.
func (tc badCase) check(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "run")
	switch tc.env {
	case "ro":
		out = filepath.Join(dir, "ro", "run")
		mkdir(t, filepath.Join(dir, "ro"))
	case "full":
		out = filepath.Join(dir, "mnt", "run")
		mkdir(t, filepath.Join(dir, "mnt"))
	}
	expand := strings.NewReplacer("$DATA", filepath.Join(dir, "data"), "$DIR", dir, "$OUT", out).Replace
	if tc.data != nil {
		tc.data(t, filepath.Join(dir, "data"))
	}
	config := tc.config
	if config == "" {
		config = landscape
	}
	cfg := write(t, dir, "c.toml", expand(config))

	// The run that was there before, and what it stored.
	priorDir := out
	if tc.env == "full" {
		priorDir = filepath.Join(dir, "prior") // copied onto the tmpfs later
	}
	if tc.prior != "" {
		makePrior(t, tc.prior, dir, priorDir)
	}
	if tc.damage != nil {
		tc.damage(t, priorDir)
	}
	before := snapshot(t, priorDir)

	args := []string{tc.cmd}
	switch tc.cmd {
	case "":
		args = []string{"run", cfg, "--out", out}
	case "summarize":
		args = append(args, out)
	}
	for _, a := range tc.args {
		args = append(args, expand(a))
	}

	var code int
	var stderr string
	after := out
	switch tc.env {
	case "":
		code, _, stderr = perturb(t, args...)
	case "ro":
		if err := nsProbe(); err != nil {
			// Without a namespace, permission bits make the folder
			// read-only, except for root.
			if os.Geteuid() == 0 {
				t.Skipf("needs a read-only mount (unshare --user --map-root-user --mount fails here: %v); as root, permission bits are no help", err)
			}
			readOnlyTree(t, filepath.Join(dir, "ro"))
			code, _, stderr = perturb(t, args...)
			break
		}
		code, stderr = inNamespace(t, dir, out, `mount --bind "$DIR/ro" "$DIR/ro" && mount -o remount,bind,ro "$DIR/ro"`, args, false)
	case "full":
		setup := fmt.Sprintf(`mount -t tmpfs -o size=%s tmpfs "$DIR/mnt"`, tc.tmpfs)
		if tc.prior != "" {
			setup += ` && cp -R "$DIR/prior" "$DIR/mnt/run"`
		}
		if tc.fill >= 0 {
			setup += fmt.Sprintf(` && { dd if=/dev/zero of="$DIR/mnt/fill" bs=4096 2>/dev/null || true; } && truncate -s -%d "$DIR/mnt/fill"`, tc.fill)
		}
		code, stderr = inNamespace(t, dir, out, setup, args, true)
		after = filepath.Join(dir, "after") // copied out of the tmpfs
	}
	t.Logf("perturb %s\nexit %d, stderr:\n%s", strings.Join(args, " "), code, stderr)

	if tc.ok {
		if code != 0 {
			t.Errorf("exit %d, want success", code)
		}
	} else {
		checkError(t, tc.cmd, code, stderr, expandAll(expand, tc.want))
	}

	// What was stored before is intact, and still readable.
	switch {
	case before != nil:
		if got := snapshot(t, after); got == nil || !got.sameAs(before) {
			t.Errorf("stored results changed:\nbefore: %v\nafter:  %v", before, got)
		}
	case tc.env == "full" && fileExists(filepath.Join(after, resultsFile)):
		// Rows committed before the disk filled: as in a run on a disk with room.
		checkCommitted(t, cfg, stderr, after)
	case tc.env == "full":
		if fileExists(filepath.Join(after, configFile+".tmp")) {
			t.Errorf("a failed run left %s.tmp", configFile)
		}
	default:
		if _, err := os.Stat(out); err == nil && tc.damage == nil {
			t.Errorf("%s was created despite the error", out)
		}
	}
}

func expandAll(expand func(string) string, s []string) []string {
	out := make([]string, len(s))
	for i, w := range s {
		out[i] = expand(w)
	}
	return out
}

// checkError checks a failed command's exit code and its one error message.
func checkError(t *testing.T, cmd string, code int, stderr string, want []string) {
	t.Helper()
	if cmd == "" {
		cmd = "run"
	}
	prefix := "perturb " + cmd + ": "
	if code == 0 {
		t.Fatal("exit 0, want an error")
	}
	var errLines []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "perturb") {
			errLines = append(errLines, l)
		}
	}
	if len(errLines) != 1 || !strings.HasPrefix(errLines[0], prefix) {
		t.Fatalf("want exactly one %q line, got %q", prefix, errLines)
	}
	msg := stderr[strings.Index(stderr, prefix):]
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("error lacks %q:\n%s", w, msg)
		}
	}
	if strings.Contains(msg, "\n\n") || strings.Count(msg, "usage") > 0 {
		t.Errorf("error message is followed by other output:\n%s", msg)
	}
}

// store is what a run directory holds: its rows (as text, NaN included),
// its config copy and the raw bytes of a results file that does not open.
type store struct {
	rows   string
	n      int
	config string
	raw    []byte
}

func (s *store) String() string {
	if s == nil {
		return "nothing"
	}
	return fmt.Sprintf("%d rows, %d raw bytes, config %q", s.n, len(s.raw), s.config)
}

func (s *store) sameAs(o *store) bool {
	return s.rows == o.rows && s.n == o.n && s.config == o.config && bytes.Equal(s.raw, o.raw)
}

// snapshot reads the run directory dir, or returns nil if it holds no
// results file. It reads a copy, so as to leave no -wal or -shm file in
// dir; a store of a newer schema is read with its copy set back to the
// current version; a file that does not open at all is compared byte for
// byte. A non-folder is kept as raw bytes.
func snapshot(t *testing.T, dir string) *store {
	t.Helper()
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		b, _ := os.ReadFile(dir)
		return &store{raw: b}
	}
	path := filepath.Join(dir, resultsFile)
	if !fileExists(path) {
		return nil
	}
	s := &store{}
	if b, err := os.ReadFile(filepath.Join(dir, configFile)); err == nil {
		s.config = string(b)
	}
	cp := filepath.Join(t.TempDir(), resultsFile)
	copyFile(t, path, cp)
	if fileExists(path + "-wal") {
		copyFile(t, path+"-wal", cp+"-wal")
	}
	_, rows, err := results.ReadRows(cp)
	if err != nil && strings.Contains(err.Error(), "schema_version") {
		setSchema(results.SchemaVersion)(t, filepath.Dir(cp))
		_, rows, err = results.ReadRows(cp)
	}
	if err != nil {
		b, rerr := os.ReadFile(path)
		if rerr != nil {
			t.Fatal(rerr)
		}
		s.raw = b
		return s
	}
	s.rows, s.n = fmt.Sprintf("%+v", rows), len(rows)
	return s
}

// makePrior makes a run directory at out: a complete or partial run of
// the landscape config, or a run of fashionConfig on dir/data.
func makePrior(t *testing.T, kind, dir, out string) {
	t.Helper()
	text, args := landscape, []string(nil)
	if kind == "fashion" {
		text, args = fashionConfig, []string{"--data", filepath.Join(dir, "data")}
	}
	cfg := write(t, dir, "prior.toml", text)
	if code, _, stderr := perturb(t, append([]string{"run", cfg, "--out", out}, args...)...); code != 0 {
		t.Fatalf("prior run exited %d: %s", code, stderr)
	}
	if kind == "partial" {
		// As if interrupted after two trials.
		execSQL(t, filepath.Join(out, resultsFile), `DELETE FROM trials WHERE trial >= 2`)
	}
	if s := snapshot(t, out); s == nil || s.n == 0 {
		t.Fatalf("prior run stored %v", s)
	}
}

// setSchema returns a damage function setting the schema_version of the
// run directory's store to v.
func setSchema(v int) func(t *testing.T, out string) {
	return func(t *testing.T, out string) {
		execSQL(t, filepath.Join(out, resultsFile), `UPDATE meta SET value = '`+strconv.Itoa(v)+`' WHERE key = 'schema_version'`)
	}
}

func execSQL(t *testing.T, path, query string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(query); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

var storedRe = regexp.MustCompile(`(\d+) of (\d+) trials are stored in`)

// checkCommitted checks the store copied out of a full disk: it opens,
// holds as many rows as the error message says, and they equal the rows
// of the same trials run on a disk with room.
func checkCommitted(t *testing.T, cfg, stderr, dir string) {
	t.Helper()
	_, got, err := results.ReadRows(filepath.Join(dir, resultsFile))
	if err != nil {
		t.Fatalf("the store on the full disk does not open after the failure: %v", err)
	}
	if m := storedRe.FindStringSubmatch(stderr); m == nil || m[1] != strconv.Itoa(len(got)) {
		t.Errorf("the store holds %d rows; the message says %v", len(got), m)
	}
	if len(got) == 0 {
		t.Errorf("no rows were committed before the disk filled; make the tmpfs larger")
	}
	ref := filepath.Join(t.TempDir(), "ref")
	if code, _, stderr := perturb(t, "run", cfg, "--out", ref); code != 0 {
		t.Fatalf("reference run: %s", stderr)
	}
	_, want, err := results.ReadRows(filepath.Join(ref, resultsFile))
	if err != nil {
		t.Fatal(err)
	}
	byKey := map[results.Key]results.Row{}
	for _, r := range want {
		byKey[r.Key()] = r
	}
	for _, r := range got {
		if w, ok := byKey[r.Key()]; !ok || !sameRow(r, w) {
			t.Fatalf("committed row differs from the reference run:\n%+v\n%+v", r, w)
		}
	}
	t.Logf("%d rows committed before the disk filled, all equal to the reference run's", len(got))
}

// sameRow compares rows' results (costs left out), floats to 1e-12
// relative (NaN equal to NaN).
func sameRow(a, b results.Row) bool {
	a, b = a.Results(), b.Results()
	fa := []*float64{&a.InitTestLoss, &a.InitTestAcc, &a.TestLoss, &a.TestAcc, &a.TrainLoss}
	fb := []*float64{&b.InitTestLoss, &b.InitTestAcc, &b.TestLoss, &b.TestAcc, &b.TrainLoss}
	for i := range fa {
		x, y := *fa[i], *fb[i]
		if math.IsNaN(x) != math.IsNaN(y) || !math.IsNaN(x) && math.Abs(x-y) > 1e-12*math.Abs(y) {
			return false
		}
		*fa[i], *fb[i] = 0, 0
	}
	if len(a.Weights) != len(b.Weights) {
		return false
	}
	for i := range a.Weights {
		if math.Abs(a.Weights[i]-b.Weights[i]) > 1e-12*math.Abs(b.Weights[i]) {
			return false
		}
	}
	a.Weights, b.Weights = nil, nil
	return fmt.Sprint(a) == fmt.Sprint(b)
}

var (
	nsOnce sync.Once
	nsErr  error
)

// readOnlyTree takes write permission away from the folder root and
// everything in it, until the test ends.
func readOnlyTree(t *testing.T, root string) {
	t.Helper()
	var paths []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil {
			paths = append(paths, p)
		}
		return nil
	})
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, fi.Mode().Perm()&^0o222); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(p, fi.Mode().Perm()) })
	}
}

// noNamespaceEnv, set to 1, makes the tests behave as on a system without
// user namespaces (to test the fallbacks).
const noNamespaceEnv = "PERTURB_TEST_NO_NAMESPACE"

// nsProbe reports, once per process, whether this system lets the test
// enter a new user and mount namespace and mount a tmpfs and a read-only
// bind mount there.
func nsProbe() error {
	nsOnce.Do(func() {
		if os.Getenv(noNamespaceEnv) == "1" {
			nsErr = fmt.Errorf("disabled by %s=1", noNamespaceEnv)
			return
		}
		probe, err := os.MkdirTemp("", "perturb-ns-probe")
		if err != nil {
			nsErr = err
			return
		}
		defer os.RemoveAll(probe)
		out, err := exec.Command("unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
			`mount -t tmpfs -o size=64k tmpfs "$0" && mount --bind "$0" "$0" && mount -o remount,bind,ro "$0"`, probe).CombinedOutput()
		if err != nil {
			nsErr = fmt.Errorf("%v: %s", err, bytes.TrimSpace(out))
		}
	})
	return nsErr
}

// inNamespace runs setup and then perturb with args in a new user and
// mount namespace (where the test is root and may mount), with $DIR the
// case's folder and $OUT the run directory out. After perturb, if
// summarize is set and a store is in out, it runs "perturb summarize" on
// it (which must succeed: what was committed stays readable where it is);
// then it copies the run directory's files to $DIR/after. It returns
// perturb's exit code and stderr, and skips the test when the system
// allows no such namespace.
func inNamespace(t *testing.T, dir, out, setup string, args []string, summarize bool) (int, string) {
	t.Helper()
	if err := nsProbe(); err != nil {
		t.Skipf("needs unshare --user --map-root-user --mount to mount a small tmpfs or a read-only folder, which fails here: %v", err)
	}
	script := setup + `
rc=0
"$0" "$@" >"$DIR/stdout" 2>"$DIR/stderr" || rc=$?
echo $rc >"$DIR/rc"
if [ "$SUMMARIZE" = 1 ] && [ -f "$OUT/results.sqlite" ]; then
	"$0" summarize "$OUT" >"$DIR/summary" 2>&1 || echo "perturb summarize of $OUT inside the namespace failed: $(cat "$DIR/summary")" >&2
fi
if [ -d "$OUT" ]; then
	mkdir "$DIR/after"
	for f in results.sqlite results.sqlite-wal config.toml config.toml.tmp; do
		if [ -f "$OUT/$f" ]; then cp "$OUT/$f" "$DIR/after/"; fi
	done
fi
`
	cmd := exec.Command("unshare", append([]string{"--user", "--map-root-user", "--mount", "sh", "-ec", script, os.Args[0]}, args...)...)
	sum := "0"
	if summarize {
		sum = "1"
	}
	cmd.Env = append(os.Environ(), "PERTURB_TEST_MAIN=1", "DIR="+dir, "OUT="+out, "SUMMARIZE="+sum)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil || buf.Len() > 0 {
		t.Fatalf("namespace script: %v\n%s", err, buf.String())
	}
	rc, err := os.ReadFile(filepath.Join(dir, "rc"))
	if err != nil {
		t.Fatal(err)
	}
	code, err := strconv.Atoi(strings.TrimSpace(string(rc)))
	if err != nil {
		t.Fatal(err)
	}
	stderr, _ := os.ReadFile(filepath.Join(dir, "stderr"))
	return code, string(stderr)
}

// Synthetic datasets. Valid files are sparse: a header, a few non-zero
// bytes, and zeros up to the right size, so a full-size Fashion-MNIST
// costs no disk space and loads in a fraction of a second.

func withDataDir(config, dir string) string {
	return strings.Replace(config, `set = "fashion-mnist"`, "set = \"fashion-mnist\"\ndir = \""+dir+"\"", 1)
}

// fashionData returns a data function writing a valid full-size
// Fashion-MNIST (raw IDX files) and then applying damage, if any.
func fashionData(damage func(t *testing.T, dir string)) func(t *testing.T, dir string) {
	return func(t *testing.T, dir string) {
		mkdir(t, dir)
		for _, s := range []struct {
			prefix string
			n      uint32
		}{{"train", 60000}, {"t10k", 10000}} {
			writeIDX(t, filepath.Join(dir, s.prefix+"-images-idx3-ubyte"), []uint32{0x803, s.n, 28, 28}, int64(s.n)*28*28)
			writeIDX(t, filepath.Join(dir, s.prefix+"-labels-idx1-ubyte"), []uint32{0x801, s.n}, int64(s.n))
		}
		if damage != nil {
			damage(t, dir)
		}
	}
}

// realFashionData copies the installed Fashion-MNIST, then damages it.
func realFashionData(damage func(t *testing.T, dir string)) func(t *testing.T, dir string) {
	return func(t *testing.T, dir string) {
		needFashion(t)
		src := os.Getenv(data.EnvFashionDir)
		if src == "" {
			src = data.DefaultFashionDir
		}
		mkdir(t, dir)
		for _, f := range []string{"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"} {
			for _, name := range []string{f, f + ".gz"} {
				if fileExists(filepath.Join(src, name)) {
					copyFile(t, filepath.Join(src, name), filepath.Join(dir, name))
				}
			}
		}
		damage(t, dir)
	}
}

// cifarData returns a data function writing a valid CIFAR-10 of one record
// per batch file, then applying damage.
func cifarData(damage func(t *testing.T, dir string)) func(t *testing.T, dir string) {
	return func(t *testing.T, dir string) {
		mkdir(t, dir)
		for i, name := range []string{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"} {
			rec := make([]byte, 2*3073)
			rec[0], rec[3073] = byte(i), byte(9-i)
			for j := 1; j < 3073; j++ {
				rec[j], rec[3073+j] = byte(j*7+i), byte(j*13)
			}
			writeBytes(t, filepath.Join(dir, name), rec)
		}
		damage(t, dir)
	}
}

// writeIDX writes an IDX header and size data bytes: a pattern in the
// first 4 KiB (so the pixels vary), zeros after it (sparse).
func writeIDX(t *testing.T, path string, header []uint32, size int64) {
	t.Helper()
	var b []byte
	for _, h := range header {
		b = binary.BigEndian.AppendUint32(b, h)
	}
	limit := int64(256) // pixels
	if len(header) == 2 {
		limit = 10 // labels
	}
	for i := int64(0); i < min(size, 4096); i++ {
		b = append(b, byte(i*37%limit))
	}
	writeBytes(t, path, b)
	truncate(t, path, int64(4*len(header))+size)
}

func gzipBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// poke sets the byte at offset of the file at path.
func poke(t *testing.T, path string, offset int64, v byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte{v}, offset); err != nil {
		t.Fatal(err)
	}
}

func truncate(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

func writeBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

func mkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func fileExists(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}
