package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/golden.md")

func fixture() Options {
	return Options{Root: "testdata", Manifest: filepath.Join("testdata", "manifest.toml"), Template: filepath.Join("testdata", "template.md")}
}

// TestGolden generates the page of the fixture runs (one missing,
// allowed) and compares it with testdata/golden.md (go test -update
// rewrites it).
func TestGolden(t *testing.T) {
	opt := fixture()
	opt.AllowMissing = true
	got, err := Generate(opt)
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "golden.md")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("generated page differs from %s (go test ./scripts/reproduction -update rewrites it):\n%s", golden, got)
	}
}

// TestMissingRun: without --allow-missing a run folder lacking
// report.json is an error naming the folder and the commands that make it.
func TestMissingRun(t *testing.T) {
	_, err := Generate(fixture())
	if err == nil {
		t.Fatal("no error for a missing run")
	}
	for _, want := range []string{"runs/missing", "perturb run configs/b.toml --out runs/missing && perturb report runs/missing"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// TestCiteErrors: an unknown test id is an error listing the ids the
// report has; an id that several models share needs @MODEL.
func TestCiteErrors(t *testing.T) {
	for _, tc := range []struct{ cite, want string }{
		{`x = "order9.test_loss.sgd"`, `has no test "order9.test_loss.sgd" (cite x); it has: order3.test_loss.sgd@logistic/0, order3.test_loss.sgd@convnet/1, gd_minus_sgd.slope, gdc_minus_sgd.closer`},
		{`x = "order3.test_loss.sgd"`, `has 2 tests "order3.test_loss.sgd" (cite x): name one as order3.test_loss.sgd@logistic/0 or order3.test_loss.sgd@convnet/1`},
		{`x = "order3.test_loss.sgd@mlp"`, `has no test "order3.test_loss.sgd" for "mlp"`},
	} {
		dir := t.TempDir()
		m := "[[panel]]\nclaim = \"c\"\nconfig = \"configs/a.toml\"\nrun = \"runs/a\"\ncommands = [\"perturb run configs/a.toml --out runs/a\"]\ncite = { " + tc.cite + " }\nresult = \"{{.C.x.Verdict}}\"\n"
		opt := fixture()
		opt.Manifest = filepath.Join(dir, "manifest.toml")
		if err := os.WriteFile(opt.Manifest, []byte(m), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Generate(opt)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("cite %s: error %v, want %q", tc.cite, err, tc.want)
		}
	}
}

// TestRepositoryManifest: the repository's manifest and template parse,
// and every panel with a run lists its commands (the runs themselves are
// not needed: --allow-missing).
func TestRepositoryManifest(t *testing.T) {
	opt := Options{Root: t.TempDir(), Manifest: "manifest.toml", Template: "template.md", AllowMissing: true}
	b, err := Generate(opt)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "**Not run.**"); n < 10 {
		t.Errorf("%d rows not run in an empty root, want every row with a run", n)
	}
}

// TestFigures: a panel's figures are copied into ImgDir and shown under
// the run's commands; a missing figure is an error naming it.
func TestFigures(t *testing.T) {
	root := t.TempDir()
	if err := os.CopyFS(root, os.DirFS("testdata")); err != nil {
		t.Fatal(err)
	}
	fig := filepath.Join(root, "runs", "a", "report", "fig.png")
	if err := os.WriteFile(fig, []byte("png bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	man := filepath.Join(root, "manifest.toml")
	b, err := os.ReadFile(man)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(b), `run = "runs/a"`, `run = "runs/a"`+"\nfigures = [\"report/fig.png\"]", 1)
	for _, tc := range []struct {
		name, figures string
		wantErr       string
	}{
		{"copied", text, ""},
		{"missing", strings.ReplaceAll(text, "report/fig.png", "report/none.png"), "none.png"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(man, []byte(tc.figures), 0o644); err != nil {
				t.Fatal(err)
			}
			img := filepath.Join(t.TempDir(), "img")
			opt := Options{Root: root, Manifest: man, Template: filepath.Join(root, "template.md"), AllowMissing: true, ImgDir: img, ImgLink: "img/x"}
			page, err := Generate(opt)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, err := os.ReadFile(filepath.Join(img, "fig.png")); err != nil || string(got) != "png bytes" {
				t.Errorf("copy: %q, %v", got, err)
			}
			if !bytes.Contains(page, []byte("![fig](img/x/fig.png)")) {
				t.Errorf("page lacks the figure link:\n%s", page)
			}
		})
	}
}
