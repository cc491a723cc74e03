package main

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// module is the import path of the repository's module.
const module = "github.com/perturb/perturb/"

// layers ranks the top-level folders: a package may import only packages
// of its own layer or of a lower one (cmd → trials → graph → kernels →
// nets).
var layers = map[string]int{"nets": 0, "kernels": 1, "graph": 2, "trials": 3, "cmd": 4}

// leaves are packages that must import nothing of the module.
var leaves = []string{"nets/seed", "nets/precision", "nets/blas"}

// TestLayering parses every non-test Go file of the repository and checks
// that imports go downward only and that the leaf packages import nothing
// of the module.
func TestLayering(t *testing.T) {
	root := filepath.Join("..", "..")
	fset := token.NewFileSet()
	checked := 0
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "runs" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		// Tests may reach up (a graph test trains with trials/optim): they
		// are not part of any package's import graph.
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		dir := filepath.ToSlash(filepath.Dir(rel))
		from, ok := layers[strings.SplitN(dir, "/", 2)[0]]
		if !ok {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		checked++
		for _, imp := range f.Imports {
			p, err := strconv.Unquote(imp.Path.Value)
			if err != nil || !strings.HasPrefix(p, module) {
				continue
			}
			target := strings.TrimPrefix(p, module)
			to, ok := layers[strings.SplitN(target, "/", 2)[0]]
			if !ok {
				t.Errorf("%s imports %s, outside the layers %v", rel, target, layers)
				continue
			}
			if to > from {
				t.Errorf("%s (layer %s) imports %s, a higher layer: imports must go cmd → trials → graph → kernels → nets", rel, dir, target)
			}
			for _, leaf := range leaves {
				if (dir == leaf || strings.HasPrefix(dir, leaf+"/")) && !strings.HasPrefix(target, leaf) {
					t.Errorf("%s is in the leaf package %s but imports %s", rel, leaf, target)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 100 {
		t.Fatalf("checked only %d files: is the repository root %s?", checked, root)
	}
}
